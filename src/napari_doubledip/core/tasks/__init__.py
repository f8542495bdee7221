"""One module per task: what nets, how they recombine, which losses, what outputs."""
