"""Load generation: synthetic applications, the open-loop engine and its HTTP/1.1 client.

    synthetic.py  realistic applications (valid, or with one rule broken)
    payloads.py   request bytes built before the clock starts
    wire.py       HTTP/1.1 request bytes and response framing
    openloop.py   the engine: keep-alive connections, one timer, no coordinated omission
    spec.py       LoadSpec (one run, checked) and Share (one process's part of it)
    share.py      run_share(): one process sends its share of the schedule
    processes.py  --processes K: the shares in K processes, their tallies merged
    driver.py     run(): one share here, or K processes; the summary
    report.py     histograms, counters, the summary
    sink.py       a canned-202 server: the generator's own ceiling
"""
