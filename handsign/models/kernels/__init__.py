"""Optional CPU kernels for the CNN's conv blocks while training: BatchNorm -> ReLU -> dropout -> max-pool in
one pass (fused), run in C (native + fused_block.c, compiled on first use where a C compiler is found) or,
without one, as the same math in torch ops. Inference never uses them."""

# how a ConvBlock trains on CPU (ConvBlock.kernels, the run config's `kernels`): "auto" = the C kernels where a
# compiler is found, else the same math in torch ops; "native" = the C kernels (an error without a compiler);
# "torch" = the torch ops; "unfused" = the plain nn.Sequential, as in eval mode
KERNELS = ("auto", "native", "torch", "unfused")
