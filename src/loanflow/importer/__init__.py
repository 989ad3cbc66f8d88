"""`loanflow import FILE`: stream a CSV or NDJSON file into the batch endpoint, resumably.

    columns.py  CSV column names -> the nested application schema
    readers.py  the file's identity, and its records as keyed request items
    state.py    where to resume: the resume point, written atomically
    report.py   the rejected-lines report, kept in line order
    sender.py   one batch to the service, with retries and backoff
    progress.py the stderr progress line and the final summary
    run.py      reader -> concurrent senders -> in-order confirmation
    cli/main.py      the `import` subcommand
"""
