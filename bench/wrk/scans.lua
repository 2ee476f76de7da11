-- POST /v1/scans: batches of DRISK_BATCH (default 100) new in_transit scans, each for a
-- different open shipment from DRISK_IDS (one shipment_id per line), every scan unique
-- (its own second, at a facility named per run by DRISK_RUN), so each 2xx acknowledges
-- DRISK_BATCH scans that must be in the store afterwards.
package.path = "bench/wrk/?.lua;" .. package.path
local common = require("common")
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  for line in io.lines(os.getenv("DRISK_IDS")) do ids[#ids + 1] = line end
  batch = tonumber(os.getenv("DRISK_BATCH") or "100")
  location = "BENCH-RUN" .. (os.getenv("DRISK_RUN") or "0")
  base = os.time() - 25 * 86400 + tid * 1000000
  counter = 0
  -- DRISK_OFFSET: where in the list this wrk process starts (several at once, one per
  -- node, would otherwise walk the same shipments in step)
  pos = (tid * 7919 + tonumber(os.getenv("DRISK_OFFSET") or "0")) % #ids
  headers = common.headers()
end

function request()
  local parts = {}
  for i = 1, batch do
    pos = pos % #ids + 1
    counter = counter + 1
    parts[i] = string.format('{"shipment_id":"%s","ts":"%s","event":"in_transit","location":"%s"}',
                             ids[pos], os.date("!%Y-%m-%dT%H:%M:%SZ", base + counter), location)
  end
  return wrk.format("POST", "/v1/scans", headers, '{"scans":[' .. table.concat(parts, ",") .. ']}')
end

done = common.done
