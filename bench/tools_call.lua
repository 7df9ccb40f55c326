-- wrk script for bench/load.sh: POSTs one MCP tools/call per request and
-- counts every answer that is not a successful JSON-RPC result, so a run
-- that measured errors cannot pass for a fast one.
--
-- Usage: wrk ... -s tools_call.lua URL [-- TOKEN_FILE]
-- With a token file the request carries "Authorization: Bearer <token>";
-- the token is read from the file so it never appears in argv or logs.

wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non200 = 0
   rpc_errors = 0
   first_bad = nil
   local path = args[1]
   if path and path ~= "" then
      local f = assert(io.open(path, "r"))
      local token = f:read("*l")
      f:close()
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      if first_bad == nil then
         first_bad = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 200)
      end
   elseif not string.find(body, '"result"', 1, true) or string.find(body, '"error"', 1, true) then
      rpc_errors = rpc_errors + 1
      if first_bad == nil then
         first_bad = "JSON-RPC error: " .. string.sub(body or "", 1, 200)
      end
   end
end

function done(summary, latency, requests)
   local bad, rpc, sample = 0, 0, nil
   for _, t in ipairs(threads) do
      bad = bad + t:get("non200")
      rpc = rpc + t:get("rpc_errors")
      sample = sample or t:get("first_bad")
   end
   local e = summary.errors
   local socket = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d non200=%d rpc_errors=%d socket_errors=%d\n",
      summary.requests, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      bad, rpc, socket))
   if sample then
      io.write("FIRST_BAD " .. string.gsub(sample, "\n", " ") .. "\n")
   end
end
