-- POSTs prepared requests from DRISK_BODIES, one per line: PATH <tab> HEADER <tab> BODY
-- (HEADER "Name: value", or "-" for none; the merchant's key from DRISK_KEY is added when
-- the path has no ?merchant=). Thread t of n takes lines t, t + n, ... in order, so every
-- request of a run is a different line while lines last (bench/run_integration.py
-- writes more than a run sends).
package.path = "bench/wrk/?.lua;" .. package.path
local common = require("common")
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  thread:set("nthreads", 0)
end

function init(args)
  lines = {}
  local n = tonumber(os.getenv("DRISK_THREADS") or "2")
  local skip = tonumber(os.getenv("DRISK_SKIP") or "0")
  local i = 0
  for line in io.lines(os.getenv("DRISK_BODIES")) do
    if i >= skip and (i - skip) % n == tid then lines[#lines + 1] = line end
    i = i + 1
  end
  pos = 0
end

function request()
  pos = pos % #lines + 1
  local path, header, body = lines[pos]:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  local h = { ["Content-Type"] = "application/json" }
  if not path:find("merchant=", 1, true) then h = common.headers() end
  if header ~= "-" then
    local name, value = header:match("^([^:]+):%s*(.*)$")
    h[name] = value
  end
  return wrk.format("POST", path, h, body)
end

done = common.done
