"""The dataset analyses of the NAS-Bench-101 paper as vectorized passes over the store's columns."""
