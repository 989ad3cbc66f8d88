"""The terminal: `loanflow serve | api | worker | keys | dead-letters | login-code | loadgen |
import | alert-rules`, and the supervisor that serve runs."""
