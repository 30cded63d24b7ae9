"""Input stage: files, stdin and queues read into validated session ids."""
