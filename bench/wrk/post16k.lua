-- POST /api/bench with a 16 KiB body (content-length set by wrk).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
wrk.method = "POST"
wrk.path = "/api/bench"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("x", 16 * 1024)
