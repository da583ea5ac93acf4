#!/usr/bin/python3
"""Write PREFIX000000 .. PREFIX<TOTAL-1> once each (256-byte values) as individual puts.

    bench/fill.py HOST PREFIX TOTAL [PROCESSES] [CONNECTIONS_PER_PROCESS]

Used by bench/run.sh (wrk always runs for a fixed time, this stops when done). Keys are
spread over several processes, each with several keep-alive connections, so the
server sees concurrent load like wrk's. Prints "FILL <seconds> <errors>".
"""
import base64
import http.client
import multiprocessing
import sys
import threading
import time

VALUE = base64.b64encode(b"v" * 256).decode()


def worker(host, prefix, keys, errors):
    conn = http.client.HTTPConnection(host, 2379, timeout=30)
    for k in keys:
        key = base64.b64encode(("%s%06d" % (prefix, k)).encode()).decode()
        body = '{"key":"%s","value":"%s"}' % (key, VALUE)
        for _ in range(3):
            try:
                conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    break
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, 2379, timeout=30)
        else:
            errors.append(k)
    conn.close()


def process(args):
    host, prefix, keys, nconn = args
    errors = []
    threads = [threading.Thread(target=worker, args=(host, prefix, keys[i::nconn], errors))
               for i in range(nconn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(errors)


def main():
    host, prefix, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    nproc = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    nconn = int(sys.argv[5]) if len(sys.argv) > 5 else 32
    keys = list(range(total))
    t0 = time.monotonic()
    with multiprocessing.Pool(nproc) as pool:
        errors = sum(pool.map(process, [(host, prefix, keys[i::nproc], nconn)
                                        for i in range(nproc)]))
    print("FILL %.1f %d" % (time.monotonic() - t0, errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
