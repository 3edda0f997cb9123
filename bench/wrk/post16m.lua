-- POST /api/upload with a 16 MiB body: over the filter's default
-- maxBodyBytes (1 MiB), so it must be skipped, never copied.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
wrk.method = "POST"
wrk.path = "/api/upload"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("x", 16 * 1024 * 1024)
