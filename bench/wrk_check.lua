-- bench.http_bench's wrk script (bench/loadgen.py runs it with the expected body size).
-- Per wrk thread: count the responses that are not 200 with exactly the expected body bytes
-- (wrk hands response() the body with any chunked framing removed). done() runs in the main
-- Lua state and collects the threads' counters through the setup() handles, then prints one
-- JSON line with the counts and the latency percentiles (microseconds).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  expect = tonumber(args[1])
  bad = 0
  first_bad = ""
end

function response(status, headers, body)
  if status ~= 200 or #body ~= expect then
    bad = bad + 1
    if first_bad == "" then
      first_bad = "status " .. status .. ", " .. #body .. " body bytes"
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("bad")
    if first == "" then first = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"responses": %d, "duration_us": %d, "bytes": %d, "bad": %d, "first_bad": "%s", '
    .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
    .. '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, bad, first,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
