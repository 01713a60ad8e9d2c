#include "gradstyle/io/tensor_bridge.hpp"

#include <cstring>

#include "gradstyle/io/checkpoint.hpp"

namespace gradstyle::io {

Tensor to_tensor(const RawTensor& t, Device device, bool float16_to_float32) {
  if (float16_to_float32 && (t.dtype == DType::f16 || t.dtype == DType::bf16))
    return to_tensor(convert_raw(t, DType::f32), device, false);
  if (uint64_t(t.numel()) * dtype_size(t.dtype) != t.data.size())
    throw ShapeError("to_tensor: " + std::to_string(t.data.size()) + " bytes do not match shape " + t.shape_str());
  return Tensor::from_blob(t.data.data(), t.shape, t.dtype, device);
}

RawTensor from_tensor(const Tensor& t) {
  Tensor h = t.detach().cpu().contiguous();
  RawTensor r;
  r.dtype = h.dtype();
  r.shape = h.shape();
  r.data.resize(h.nbytes());
  if (!r.data.empty()) std::memcpy(r.data.data(), h.raw_data(), r.data.size());
  return r;
}

Tensor image_to_tensor(const Image& img, Device device) {
  std::vector<float> v = image_to_nchw(img);
  return Tensor::from_blob(v.data(), {1, img.channels, img.height, img.width}, DType::f32, device);
}

Image tensor_to_image(const Tensor& t, int64_t index, U8Rounding rounding) {
  Tensor x = t;
  if (x.dim() == 3) x = x.unsqueeze(0);
  GS_CHECK(x.dim() == 4 && (x.size(1) == 1 || x.size(1) == 3), ShapeError,
           "tensor_to_image: expected [N, 1|3, H, W] or [1|3, H, W], got ", shape_str(t.shape()));
  GS_CHECK(index >= 0 && index < x.size(0), IndexError, "tensor_to_image: index ", index, " out of range for batch ",
           x.size(0));
  GS_CHECK(is_floating(x.dtype()), DTypeError, "tensor_to_image: expected a floating tensor, got ", dtype_name(x.dtype()));
  std::vector<float> v = x.narrow(0, index, 1).detach().to(DType::f32).to_vector<float>();
  return chw_to_image(v.data(), int(x.size(1)), int(x.size(2)), int(x.size(3)), rounding);
}

namespace {

std::string list_keys(const PyValue& d) {
  std::string s;
  for (size_t k = 0; k < d.entries.size() && k < 20; ++k)
    s += (k ? ", " : "") + d.entries[k].first->repr(60);
  return s.empty() ? "(none)" : s;
}

}  // namespace

std::map<std::string, Tensor> load_state_dict_tensors(const std::string& path, const StateDictOptions& opts) {
  std::map<std::string, Tensor> out;
  auto add = [&](const std::string& name, const RawTensor& t) {
    out[name] = to_tensor(t, opts.device, opts.float16_to_float32);
  };
  const Checkpoint ck = open_checkpoint(path);
  if (ck.is_pt()) {
    const PyValue* root = ck.tree.get();
    if (!opts.key.empty()) {
      root = root->get(opts.key);
      if (!root)
        throw FormatError(quoted(path) + ": no entry '" + opts.key + "' at the top level (keys: " + list_keys(*ck.tree) +
                          ")");
    }
    for (const auto& [n, t] : opts.key.empty() ? ck.tensors : flatten_tensors(*root)) add(n, *t);
    return out;
  }
  // Flat formats: the key selects the names under "<key>.".
  const std::string prefix = opts.key.empty() ? "" : opts.key + ".";
  for (const auto& [n, t] : ck.tensors)
    if (n.compare(0, prefix.size(), prefix) == 0) add(n.substr(prefix.size()), *t);
  if (!opts.key.empty() && out.empty())
    throw FormatError(quoted(path) + ": no tensor names start with '" + prefix + "'");
  return out;
}

}  // namespace gradstyle::io
