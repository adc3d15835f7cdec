// What host and device code share to compute the same bits: RADEDGE_HOST_DEVICE, and IEEE
// round-to-nearest operations that a compiler may not fuse into an FMA. The CPU ops are built
// with -ffp-contract=off for the same reason (GCC fuses by default on aarch64, so on Jetson).
#pragma once

#if defined(__CUDACC__)
#define RADEDGE_HOST_DEVICE __host__ __device__
#else
#define RADEDGE_HOST_DEVICE
#endif

// On the device the _rn intrinsic, which nvcc never fuses; on the host the operator itself.
#if defined(__CUDA_ARCH__)
#define RADEDGE_ROUNDED(intrinsic, a, op, b) intrinsic(a, b)
#else
#define RADEDGE_ROUNDED(intrinsic, a, op, b) ((a)op(b))
#endif

namespace radedge::detail {

RADEDGE_HOST_DEVICE inline double mul_rn(double a, double b) { return RADEDGE_ROUNDED(__dmul_rn, a, *, b); }
RADEDGE_HOST_DEVICE inline double add_rn(double a, double b) { return RADEDGE_ROUNDED(__dadd_rn, a, +, b); }
RADEDGE_HOST_DEVICE inline double div_rn(double a, double b) { return RADEDGE_ROUNDED(__ddiv_rn, a, /, b); }
RADEDGE_HOST_DEVICE inline float mul_rn(float a, float b) { return RADEDGE_ROUNDED(__fmul_rn, a, *, b); }
RADEDGE_HOST_DEVICE inline float add_rn(float a, float b) { return RADEDGE_ROUNDED(__fadd_rn, a, +, b); }
RADEDGE_HOST_DEVICE inline float div_rn(float a, float b) { return RADEDGE_ROUNDED(__fdiv_rn, a, /, b); }

}  // namespace radedge::detail

#undef RADEDGE_ROUNDED
