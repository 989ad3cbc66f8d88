from loanflow.cli.main import main

raise SystemExit(main())
