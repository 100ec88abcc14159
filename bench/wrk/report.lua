-- Shared by every bench script: thread ids, non-2xx counting and a JSON summary line.
-- Each script defines `request` (and may define `on_response`); this file defines setup, the
-- response hook (counting every non-2xx answer as an error) and done.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

non2xx = 0
completed = 0

function response(status, headers, body)
  if on_response then
    on_response(status, headers, body)
  elseif status < 200 or status > 299 then
    non2xx = non2xx + 1
  else
    completed = completed + 1
  end
end

function done(summary, latency, requests)
  local bad, ok, dry = 0, 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
    ok = ok + (thread:get("completed") or 0)
    dry = dry + (thread:get("exhausted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"completed":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"threads":%d,"exhausted":%d}\n',
    summary.requests, summary.duration, bad, ok,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, #threads, dry))
end
