"""Native shells around willow_core: relay, peers, workers and the CLI (later issues)."""
