"""Native kernels against their numpy references."""
