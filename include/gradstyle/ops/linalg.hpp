#pragma once
// Matrix products. CPU: Eigen GEMM; CUDA: cuBLAS (TF32 off unless enabled with set_allow_tf32).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

// matmul: [n,k]@[k,m]; batched [...,n,k]@[...,k,m] with broadcast batch dims; 1-D operands are
// treated like NumPy (vector-matrix / matrix-vector / dot).
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);  // [B,n,k] @ [B,k,m]
// linear: x [..., in] @ weight[out, in]^T + bias[out] (bias may be undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// Allow TensorFloat-32 in cuBLAS/cuDNN float32 work (default false: exact float32).
void set_allow_tf32(bool on);
bool allow_tf32();

}  // namespace gradstyle
