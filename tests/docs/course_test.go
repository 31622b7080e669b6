package docs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The course's pages (docs/learn) show commands in fenced blocks whose language says what they
// hold:
//
//	```sh        commands, one per line (a `\` at the end continues one); `# …` is a comment
//	```console   a transcript: each `$ ` line is a command, the lines under it what it prints
//	```text      output or a diagram, nothing to run (also any other language: Dockerfile, proto)
//
// A command whose comment says `# terminal X` is a long-running program the reader leaves
// running in a terminal of its own; a later command of the same terminal replaces it.
// Between blocks, a page may tell the test what the prose asks the reader to do, in HTML
// comments the rendered page does not show:
//
//	<!-- doc-test: stop terminal X -->    Ctrl-C in terminal X
//	<!-- doc-test: kill terminal X -->    kill -9 of the program in terminal X
//	<!-- doc-test: start terminal X -->   terminal X again as the README starts it
//	<!-- doc-test: run COMMAND -->        a command the prose asks for without a block
//	<!-- doc-test: no system -->          the page's commands need no running services
//	<!-- doc-test: brokers ha -->         the page gets replicated brokers of its own (brokers_test.go)
//
// After a language, a fence may carry options for comparing the output shown with the output
// got: `any-numbers` (the numbers may differ: they depend on timing or on random ids) and
// `any-order` (the lines may come in another order). `needs-jaeger` marks a block whose commands
// need the trace backend of `make jaeger`: TestCoursePages runs them only when it can have one.

// coursePages are the course's pages, in the order a reader follows them.
var coursePages = []string{
	"README.md", "01-docker.md", "02-kubernetes.md", "03-rabbitmq.md",
	"04-kafka.md", "05-grpc.md", "06-system.md", "07-observe.md", "08-replicate.md", "glossary.md",
}

// needsJaeger is the fence option of blocks that need Jaeger (see TestCoursePages).
const needsJaeger = "needs-jaeger"

// page is one parsed course page.
type page struct {
	name  string   // e.g. "03-rabbitmq.md"
	lines []string // the file, one entry per line
	items []item   // its commands and directives, in order
	spans []span   // the commands quoted inline in its prose
}

// item is a command of a block, or a directive.
type item struct {
	line      int    // 1-based line of the command or directive
	directive string // the directive's text; empty for a command
	cmd       string // the command as bash runs it (continuations kept)
	terminal  string // the terminal it runs in, from its `# terminal X` comment
	console   bool   // from a console block: want is what it prints
	want      []string
	wantFrom  int // 0-based index into lines of the first output line
	wantTo    int // one past the last
	indent    string
	options   []string // the fence's options
}

// span is an inline code span that holds a command.
type span struct {
	line int
	cmd  string
}

// oneLine is how a command reads in the inventory: continuations joined, spaces collapsed.
func (it item) oneLine() string { return collapse(strings.ReplaceAll(it.cmd, "\\\n", " ")) }

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func (it item) has(option string) bool { return slices.Contains(it.options, option) }

var (
	fence       = regexp.MustCompile("^(\\s*)```(.*)$")
	directiveRe = regexp.MustCompile(`^\s*<!-- doc-test: (.+?) -->\s*$`)
	terminalRe  = regexp.MustCompile(`^terminal ([A-Za-z0-9]+)`)
	spanRe      = regexp.MustCompile("`([^`]+)`")
	envAssign   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*=\S*$`)
)

// commandWords are the programs whose inline mentions, with arguments, are commands.
var commandWords = []string{
	"curl", "grpcurl", "kcat", "kubectl", "docker", "tilt", "make", "rabbitmqctl", "kind",
	"jq", "kill", "time", "sudo", "brew", "for",
}

// isCommand tells an inline code span that is a command (a program and its arguments) from a
// name, a path or a value.
func isCommand(s string) bool {
	f := strings.Fields(s)
	for len(f) > 1 && envAssign.MatchString(f[0]) {
		f = f[1:]
	}
	if len(f) < 2 {
		return false
	}
	switch {
	case f[0] == "for":
		return strings.Contains(s, "; do ") // a shell loop, not Python's for … in
	case slices.Contains(commandWords, f[0]):
		return true
	case f[0] == "go":
		return slices.Contains([]string{"run", "build", "install", "version", "test", "mod", "generate"}, f[1])
	case strings.HasPrefix(f[0], "bin/"), strings.HasPrefix(f[0], "scripts/"):
		return true
	}
	return false
}

func loadPage(t *testing.T, name string) *page {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(root, "docs", "learn", name))
	require.NoError(t, err)
	p := &page{name: name, lines: strings.Split(string(body), "\n")}
	require.NoError(t, p.parse())
	return p
}

func (p *page) parse() error {
	for i := 0; i < len(p.lines); i++ {
		l := p.lines[i]
		if m := directiveRe.FindStringSubmatch(l); m != nil {
			p.items = append(p.items, item{line: i + 1, directive: m[1]})
			continue
		}
		m := fence.FindStringSubmatch(l)
		if m == nil {
			for _, s := range spanRe.FindAllStringSubmatch(l, -1) {
				if isCommand(s[1]) {
					p.spans = append(p.spans, span{line: i + 1, cmd: collapse(s[1])})
				}
			}
			continue
		}
		indent, info := m[1], strings.Fields(m[2])
		if len(info) == 0 {
			return fmt.Errorf("%s:%d: a fenced block without a language; say sh, console or text", p.name, i+1)
		}
		end := i + 1
		for end < len(p.lines) && strings.TrimSpace(p.lines[end]) != "```" {
			end++
		}
		if end == len(p.lines) {
			return fmt.Errorf("%s:%d: the block never ends", p.name, i+1)
		}
		body := make([]string, 0, end-i-1)
		for _, b := range p.lines[i+1 : end] {
			body = append(body, strings.TrimPrefix(b, indent))
		}
		var err error
		switch info[0] {
		case "sh":
			err = p.parseCommands(i+1, body, indent, info[1:], false)
		case "console":
			err = p.parseCommands(i+1, body, indent, info[1:], true)
		}
		if err != nil {
			return err
		}
		i = end
	}
	return nil
}

// parseCommands reads a sh or console block whose first line is lines[first] (0-based).
func (p *page) parseCommands(first int, body []string, indent string, options []string, console bool) error {
	var cur *item
	for j := 0; j < len(body); j++ {
		l := body[j]
		text, ok := l, true
		if console {
			text, ok = strings.CutPrefix(l, "$ ")
		}
		if !ok {
			if cur == nil {
				return fmt.Errorf("%s:%d: output before the first `$ ` command", p.name, first+j+1)
			}
			cur.want = append(cur.want, l)
			cur.wantTo = first + j + 1
			continue
		}
		if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		cmd, start := text, first+j+1
		for strings.HasSuffix(strings.TrimRight(cmd, " "), "\\") && j+1 < len(body) {
			j++
			cmd += "\n" + body[j]
		}
		code, comment := splitComment(cmd)
		it := item{line: start, cmd: strings.TrimSpace(code), console: console, indent: indent, options: options,
			wantFrom: first + j + 1, wantTo: first + j + 1}
		if m := terminalRe.FindStringSubmatch(comment); m != nil {
			it.terminal = m[1]
		}
		p.items = append(p.items, it)
		cur = &p.items[len(p.items)-1]
	}
	return nil
}

// splitComment splits a command line at its `#` comment: a # after a blank, outside quotes.
func splitComment(cmd string) (code, comment string) {
	var quote rune
	prev := ' '
	for i, r := range cmd {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return strings.TrimRight(cmd[:i], " \t"), strings.TrimSpace(cmd[i+1:])
		}
		prev = r
	}
	return cmd, ""
}

func TestCoursePagesParse(t *testing.T) {
	var commands, transcripts int
	for _, name := range coursePages {
		p := loadPage(t, name)
		for _, it := range p.items {
			if it.directive == "" {
				commands++
				if it.console {
					transcripts++
				}
			}
		}
	}
	require.Greater(t, commands, 100, "the pages were parsed")
	require.Greater(t, transcripts, 50, "the pages were parsed")
}

func TestSplitComment(t *testing.T) {
	for _, tc := range []struct{ in, code, comment string }{
		{"make up      # Kind cluster", "make up", "Kind cluster"},
		{"bin/buf breaking --against '.git#branch=main'", "bin/buf breaking --against '.git#branch=main'", ""},
		{`curl -w '%{http_code} # not a comment' x # terminal A`, `curl -w '%{http_code} # not a comment' x`, "terminal A"},
	} {
		code, comment := splitComment(tc.in)
		require.Equal(t, tc.code, code, tc.in)
		require.Equal(t, tc.comment, comment, tc.in)
	}
}
