# Prints one trace from Jaeger's query API as a tree: each span under its parent, in the order
# they started, with its service and duration, and what else step 7 of the course looks at: an
# error status, and the notifier's attempt number.
#
#   curl -sS localhost:16686/api/v3/traces/<trace id> | jq -r -f labs/jq/spans.jq
#
# The answer of GET /api/v3/traces/<trace id> is OpenTelemetry's OTLP JSON under "result": spans
# grouped by the service that sent them (resourceSpans, whose resource names the service), times
# in nanoseconds since 1970 as strings, IDs in hex.

[ .result.resourceSpans[]
  | (.resource.attributes[] | select(.key == "service.name") | .value.stringValue) as $service
  | .scopeSpans[].spans[]
  | {
      id: .spanId,
      parent: (.parentSpanId // ""),
      name,
      service: $service,
      start: (.startTimeUnixNano | tonumber),
      ms: ((((.endTimeUnixNano | tonumber) - (.startTimeUnixNano | tonumber)) / 1e5 | round) / 10),
      error: (.status.code == "STATUS_CODE_ERROR" or .status.code == 2),
      attempt: ([.attributes[]? | select(.key == "app.notifier.attempt") | .value.intValue][0])
    }
] as $spans

# A span and, indented under it, its children.
| def tree($depth):
    . as $s
    | ("  " * $depth) + "\($s.name)  (\($s.service), \($s.ms)ms"
        + (if $s.attempt then ", attempt \($s.attempt)" else "" end)
        + (if $s.error then ", error" else "" end) + ")",
      ($spans | map(select(.parent == $s.id)) | sort_by(.start) | .[] | tree($depth + 1));

# The roots: spans whose parent is not in the trace (the caller's own span, for a request that
# came with a traceparent, or none at all).
[$spans[] | .id] as $ids
| $spans | map(select(.parent as $p | $ids | index($p) | not)) | sort_by(.start) | .[] | tree(0)
