"""The preview kind: one lane per pull request that qualifies, served by the product kind's
observer, diff and executor (`lanes.py` derives them, `discovery.py` finds the PRs)."""
