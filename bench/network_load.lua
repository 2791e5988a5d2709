-- wrk script: POST pre-built The Things Stack or ChirpStack deliveries, each at most once per run.
-- Usage: wrk -s network_load.lua URL -- <deliveries file> <wrk threads> <path> <header name>
-- The file holds one "header value<TAB>body" line per delivery (the header is the credential,
-- e.g. Authorization: Bearer ...); thread i takes lines i, i+n, ...
-- Prints one JSON object with the totals and latency percentiles when done (as kpn_load.lua).

local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local path, threads, target, header = args[1], tonumber(args[2]), args[3], args[4]
  prepared = {}
  local line_number = 0
  for line in io.lines(path) do
    if line_number % threads == id then
      local tab = line:find("\t", 1, true)
      local headers = {["Content-Type"] = "application/json"}
      headers[header] = line:sub(1, tab - 1)
      prepared[#prepared + 1] = wrk.format("POST", target, headers, line:sub(tab + 1))
    end
    line_number = line_number + 1
  end
  position = 0
end

function request()
  -- Wrapping around would resend deliveries (cheap duplicates): the file must be long enough.
  position = position % #prepared + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
