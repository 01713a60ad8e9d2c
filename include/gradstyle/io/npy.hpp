#pragma once
// NumPy .npy / .npz (FORMATS.md §7). The header dict is read by a tiny literal parser (never
// evaluated); object, structured and string dtypes are refused; big-endian data is byte-swapped
// and Fortran-order arrays are transposed to C order on load. `<u2` (no DType equivalent) is
// widened to int32. .npz members may be stored or deflated.
#include <string>

#include "gradstyle/io/file.hpp"
#include "gradstyle/io/raw_tensor.hpp"

namespace gradstyle::io {

RawTensor parse_npy(ByteSpan data, const std::string& name);
RawTensor load_npy(const std::string& path);
// Version 1.0 header padded so the data starts on a 64-byte boundary. bfloat16 is refused
// (NumPy has no such dtype): convert to float32 first.
std::vector<uint8_t> serialize_npy(const RawTensor& t);
void save_npy(const std::string& path, const RawTensor& t);

// Members "<key>.npy" -> key, in archive order.
NamedTensors parse_npz(ByteSpan data, const std::string& name);
NamedTensors load_npz(const std::string& path);
std::vector<uint8_t> serialize_npz(const NamedTensors& tensors);  // stored (uncompressed) members
void save_npz(const std::string& path, const NamedTensors& tensors);

}  // namespace gradstyle::io
