"""Load generation: synthetic applications and the open-loop driver."""
