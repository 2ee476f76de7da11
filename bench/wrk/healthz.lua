-- GET /healthz: the server's ceiling (no auth, no store, no scoring).
package.path = "bench/wrk/?.lua;" .. package.path
local common = require("common")
wrk.method = "GET"
wrk.path = "/healthz"
done = common.done
