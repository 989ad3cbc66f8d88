"""The benchmark suite (`loanflow bench`): scenarios, throwaway backends, report, charts."""
