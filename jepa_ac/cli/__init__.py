"""What the commands (`python -m jepa_ac.<name>`) share: flags and overrides (`args`) and one
error boundary (`errors`)."""
