-- wrk script for bench/run.sh: etcd's v3 JSON API under load.
--   wrk ... -s bench/kv.lua URL -- put   NKEYS        random puts, 256-byte values
--   wrk ... -s bench/kv.lua URL -- range NKEYS        random single-key ranges
-- done() prints one line: RESULT <req/s> <p99 ms> <non-2xx> <socket errors>.
-- Bodies are built once per thread in init(), so the Lua cost per request is a table lookup.

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
	local out, n = {}, #s
	for i = 1, n, 3 do
		local a, b, c = s:byte(i, i + 2)
		local v = a * 65536 + (b or 0) * 256 + (c or 0)
		local q = {}
		for j = 3, 0, -1 do
			local x = math.floor(v / 64 ^ j) % 64
			q[#q + 1] = B64:sub(x + 1, x + 1)
		end
		if not b then q[3], q[4] = "=", "=" elseif not c then q[4] = "=" end
		out[#out + 1] = table.concat(q)
	end
	return table.concat(out)
end

local headers = { ["Content-Type"] = "application/json" }
local value = b64(string.rep("v", 256))

local counter = 0
function setup(thread)
	counter = counter + 1
	thread:set("id", counter)
end

local mode, bodies, nkeys

local function put_body(key)
	return '{"key":"' .. b64(key) .. '","value":"' .. value .. '"}'
end

function init(args)
	mode = args[1] or "put"
	math.randomseed(id * 7919 + os.time())
	nkeys = tonumber(args[2] or "10000")
	bodies = {}
	for k = 0, nkeys - 1 do
		local key = string.format("key%06d", k)
		if mode == "put" then
			bodies[k] = wrk.format("POST", "/v3/kv/put", headers, put_body(key))
		else
			bodies[k] = wrk.format("POST", "/v3/kv/range", headers,
				'{"key":"' .. b64(key) .. '"}')
		end
	end
end

function request()
	return bodies[math.random(0, nkeys - 1)]
end

function done(summary, latency, requests)
	local secs = summary.duration / 1e6
	local e = summary.errors
	io.write(string.format("RESULT %.1f %.3f %d %d\n", summary.requests / secs,
		latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
