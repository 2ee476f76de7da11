-- POST /v1/score: a parcel in flight given inline with three scans (features, the late,
-- lost and eta models, reasons); the server stores nothing.
package.path = "bench/wrk/?.lua;" .. package.path
local common = require("common")
local now = os.time()
local function ts(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end
local c = now - 3 * 86400
wrk.method = "POST"
wrk.path = "/v1/score"
wrk.headers = common.headers()
wrk.body = string.format(
  '{"carrier":"apex","service":"ground","origin":"R01","destination":"R05",' ..
  '"declared_value":120,"weight_kg":1.5,"created_at":"%s","promised_at":"%s","scans":[' ..
  '{"ts":"%s","event":"label_created","location":"R01-WH-CASA"},' ..
  '{"ts":"%s","event":"picked_up","location":"R01-WH-CASA"},' ..
  '{"ts":"%s","event":"arrived_at_facility","location":"R01-HUB"}]}',
  ts(c), ts(c + 4 * 86400), ts(c), ts(c + 3600), ts(c + 7200))
done = common.done
