#pragma once
// Matrix products. CPU: Eigen GEMM; CUDA: cuBLAS (TF32 off unless enabled with set_allow_tf32).
#include "gradstyle/core/settings.hpp"  // set_allow_tf32 (re-exported: matmul's TF32 switch)
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

// matmul: [n,k]@[k,m]; batched [...,n,k]@[...,k,m] with broadcast batch dims; 1-D operands are
// treated like NumPy (vector-matrix / matrix-vector / dot).
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);  // [B,n,k] @ [B,k,m]
// linear: x [..., in] @ weight[out, in]^T + bias[out] (bias may be undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace gradstyle
