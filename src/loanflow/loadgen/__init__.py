"""Load generation: synthetic applications, the open-loop engine and its HTTP/1.1 client.

    synthetic.py  realistic applications (valid, or with one rule broken)
    payloads.py   request bytes built before the clock starts
    wire.py       HTTP/1.1 request bytes and response framing
    openloop.py   the engine: keep-alive connections, one timer, no coordinated omission
    driver.py     LoadSpec and run(): one process, or --processes K (processes.py)
    report.py     histograms, counters, the summary
    sink.py       a canned-202 server: the generator's own ceiling
"""
