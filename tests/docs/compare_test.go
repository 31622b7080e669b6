package docs_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// What differs from one run to the next is masked, in the output shown and in the output got
// alike, before they are compared: generated ids, clocks, durations, memory addresses.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	// UUIDv7 (order ids without an Idempotency-Key, event ids): time-ordered, hence new each run.
	// UUIDv5 order ids are derived from the request and stay as shown.
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}`), "<uuidv7>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?`), "<time>"},
	{regexp.MustCompile(`\d\d:\d\d:\d\d(\.\d+)?Z`), "<time>"},
	{regexp.MustCompile(`(?m)^Date: .*$`), "Date: <date>"},
	{regexp.MustCompile(`(?m)^X-Request-Id: \S+$`), "X-Request-Id: <id>"},
	{regexp.MustCompile(`(?m)^Served-By: .+$`), "Served-By: <host>"}, // the host name of whoever runs it
	{regexp.MustCompile(`traceparent=00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]`), "traceparent=<traceparent>"},
	{regexp.MustCompile(`\b\d+m\d+(\.\d+)?s\b`), "<duration>"}, // time's "0m2.025s"
	{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|us|ms|s)\b`), "<duration>"},
	{regexp.MustCompile(`\(0x[0-9a-f]+\)`), "(<address>)"},
	// Kafka's ids (a topic's, a cluster's, a log directory's): 16 random bytes, URL-safe base64.
	{regexp.MustCompile(`(^|[\s"])[A-Za-z0-9_-]{21}[AQgw]([\s",]|$)`), "${1}<kafka-id>${2}"},
}

var number = regexp.MustCompile(`\d+`)

// padded is a masked number padded to its column's width before a tab, as Kafka's tools print
// tables: the padding changes with the number's width.
var padded = regexp.MustCompile(`<n> +\t`)

// normalize masks what varies in lines, and with any-numbers every number, with any-order
// sorts them; trailing blanks and blank lines at the end do not count.
func normalize(lines []string, anyNumbers, anyOrder bool) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		for _, m := range masks {
			l = m.re.ReplaceAllString(l, m.with)
		}
		if anyNumbers {
			l = padded.ReplaceAllString(number.ReplaceAllString(l, "<n>"), "<n>\t")
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	if anyOrder {
		slices.Sort(out)
	}
	return out
}

// ellipsis in the output shown stands for what the page leaves out: a line of its own for any
// number of lines, within a line for any text.
const ellipsis = "…"

// matches reports whether got (normalized) is what want (normalized) shows.
func matches(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if strings.TrimSpace(want[0]) == ellipsis {
		for skip := 0; skip <= len(got); skip++ {
			if matches(want[1:], got[skip:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && lineMatches(want[0], got[0]) && matches(want[1:], got[1:])
}

func lineMatches(want, got string) bool {
	if !strings.Contains(want, ellipsis) {
		return want == got
	}
	parts := strings.Split(want, ellipsis)
	for i, part := range parts {
		parts[i] = regexp.QuoteMeta(part)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

func TestMatches(t *testing.T) {
	norm := func(s string) []string { return normalize(strings.Split(s, "\n"), false, false) }
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"a\nb", "a\nb\n", true},
		{"a\nb", "a\nc", false},
		{"a\n…\nd", "a\nb\nc\nd", true},
		{"a\n…\nd", "a\nd", true},
		{"a\n…\nd", "a\nb", false},
		{"file: ELF, BuildID=…, stripped", "file: ELF, BuildID=abc/def, stripped", true},
		{"took 2.002816s", "took 1.9s", true},
		{`{"order_id":"01a21d6a-0321-739c-8e0d-089968f5b2f1"}`, `{"order_id":"01a21d6b-1111-7222-8e0d-089968f5b2f1"}`, true},
		{`{"order_id":"b1217dbb-e758-59b5-8a85-dce6f42ca056"}`, `{"order_id":"b1217dbb-e758-59b5-8a85-dce6f42ca057"}`, false},
		{"orders 1", "orders 2", false},
	} {
		assert.Equal(t, tc.ok, matches(norm(tc.want), norm(tc.got)), "%q vs %q", tc.want, tc.got)
	}
	assert.True(t, matches(normalize([]string{"orders 1", "b"}, true, true), normalize([]string{"b", "orders 7"}, true, true)))
	assert.True(t, matches(normalize([]string{"1     \t204         \t0  \tLeader"}, true, false),
		normalize([]string{"3     \t1204        \t12 \tLeader"}, true, false)), "a padded column")
	assert.True(t, matches(norm("TopicId: iRxomxx-ThqFvC0yNhxODw\tPartitionCount: 3"), norm("TopicId: U7cQIu7XcqueLvBwhCLyrQ\tPartitionCount: 3")))
}
