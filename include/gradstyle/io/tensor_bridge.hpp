#pragma once
// Bridge between the io readers' plain types and gradstyle::Tensor: RawTensor <-> Tensor,
// Image <-> [-1, 1] NCHW float32 Tensor, and state-dict loading from .pt / safetensors / .npz.
#include <map>
#include <string>

#include "gradstyle/core/tensor.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/raw_tensor.hpp"

namespace gradstyle::io {

// Copies a RawTensor into a contiguous Tensor on `device`. With float16_to_float32, float16 and
// bfloat16 data is widened to float32 (exactly) first.
Tensor to_tensor(const RawTensor& t, Device device = Device::cpu(), bool float16_to_float32 = false);
// Contiguous host copy of any tensor (any device, any strides).
RawTensor from_tensor(const Tensor& t);

// [1, C, H, W] float32 in [-1, 1] (ToTensor + Normalize(0.5, 0.5)).
Tensor image_to_tensor(const Image& img, Device device = Device::cpu());
// Image `index` of an [N, C, H, W] (or [C, H, W]) float tensor with C = 1 or 3, clamped to
// [-1, 1] and quantised with `rounding`.
Image tensor_to_image(const Tensor& t, int64_t index = 0, U8Rounding rounding = U8Rounding::Round);

struct StateDictOptions {
  // Take this entry of the top-level dict first ("g_ema", "state_dict"); "" = the whole file.
  // For safetensors/npz it selects the names starting with "<key>." and strips that prefix.
  std::string key;
  Device device = Device::cpu();
  bool float16_to_float32 = true;
};

// Loads every tensor of a checkpoint as "a.b.c" -> Tensor (nested dicts joined with '.').
// Opens the file with open_checkpoint (.pt zip or legacy, safetensors, .npz, .npy). FormatError
// when it is none of these or `key` is missing (the message lists the available keys).
std::map<std::string, Tensor> load_state_dict_tensors(const std::string& path, const StateDictOptions& opts = {});

}  // namespace gradstyle::io
