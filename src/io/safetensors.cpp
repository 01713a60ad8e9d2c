// safetensors reader/writer (FORMATS.md §6). The header is parsed with nlohmann's SAX interface
// so that duplicate keys, negative or fractional numbers and unexpected nesting are seen (the DOM
// parser silently keeps the last duplicate and turns 2^64 into a float).
#include "gradstyle/io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "checked.hpp"

namespace gradstyle::io {

using detail::fail;

namespace {

struct DTypeInfo {
  const char* name;
  uint32_t bits;
  std::optional<DType> dt;
};
const DTypeInfo kDTypes[] = {
    {"BOOL", 8, DType::boolean}, {"F4", 4, {}}, {"F6_E2M3", 6, {}}, {"F6_E3M2", 6, {}}, {"U8", 8, DType::u8},
    {"I8", 8, DType::i8}, {"F8_E5M2", 8, {}}, {"F8_E4M3", 8, {}}, {"F8_E8M0", 8, {}}, {"F8_E4M3FNUZ", 8, {}},
    {"F8_E5M2FNUZ", 8, {}}, {"I16", 16, DType::i16}, {"U16", 16, {}}, {"F16", 16, DType::f16},
    {"BF16", 16, DType::bf16}, {"I32", 32, DType::i32}, {"U32", 32, {}}, {"F32", 32, DType::f32},
    {"C64", 64, {}}, {"F64", 64, DType::f64}, {"I64", 64, DType::i64}, {"U64", 64, {}}};

const DTypeInfo* find_dtype(const std::string& n) {
  for (const auto& d : kDTypes)
    if (n == d.name) return &d;
  return nullptr;
}

constexpr uint64_t kMaxHeader = 100'000'000;

// SAX handler accepting exactly {"name": {"dtype": s, "shape": [u...], "data_offsets": [u, u]},
// "__metadata__": {"k": "v"}}. Throws FormatError on anything else.
class HeaderSax {
 public:
  using json = nlohmann::json;
  HeaderSax(const std::string& name, SafetensorsHeader& out) : name_(name), out_(out) {}

  bool null() { return scalar("null"); }
  bool boolean(bool) { return scalar("a boolean"); }
  bool number_integer(json::number_integer_t) { return number_bad("a negative number"); }
  bool number_float(json::number_float_t, const std::string&) { return number_bad("a non-integer or too large number"); }
  bool binary(json::binary_t&) { return scalar("binary"); }
  bool number_unsigned(json::number_unsigned_t v) {
    if (depth_ != 3) return scalar("a number");
    if (field_ == Field::Shape) cur_.shape.push_back(v);
    else if (field_ == Field::Offsets) offsets_.push_back(v);
    else return scalar("a number");
    return true;
  }
  bool string(std::string& v) {
    if (depth_ == 2 && in_meta_) {
      out_.metadata[key2_] = v;
      return true;
    }
    if (depth_ == 2 && field_ == Field::DType) {
      cur_.dtype = v;
      return true;
    }
    return scalar("a string");
  }
  bool start_object(std::size_t) {
    if (depth_ == 0 || depth_ == 1) {
      ++depth_;
      if (depth_ == 2) {
        in_meta_ = key1_ == "__metadata__";
        if (in_meta_ && seen_meta_) bad("duplicate key '__metadata__'");
        seen_meta_ = seen_meta_ || in_meta_;
        cur_ = SafetensorsEntry{};
        cur_.name = key1_;
        fields_.clear();
        offsets_.clear();
      }
      return true;
    }
    return scalar("an object");
  }
  bool key(std::string& k) {
    if (depth_ == 1) {
      if (!names_.insert(k).second) bad("duplicate tensor name '" + k + "'");
      key1_ = k;
      return true;
    }
    // depth 2
    key2_ = k;
    if (!fields_.insert(k).second) bad("duplicate key '" + k + "' in entry '" + key1_ + "'");
    if (in_meta_) return true;
    if (k == "dtype") field_ = Field::DType;
    else if (k == "shape") field_ = Field::Shape;
    else if (k == "data_offsets") field_ = Field::Offsets;
    else bad("tensor '" + key1_ + "' has unknown field '" + k + "' (expected dtype, shape, data_offsets)");
    return true;
  }
  bool end_object() {
    if (depth_ == 2 && !in_meta_) {
      if (fields_.size() != 3) bad("tensor '" + key1_ + "' needs exactly dtype, shape and data_offsets");
      if (offsets_.size() != 2) bad("tensor '" + key1_ + "': data_offsets must hold exactly 2 numbers");
      cur_.begin = offsets_[0];
      cur_.end = offsets_[1];
      out_.tensors.push_back(std::move(cur_));
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ == 2 && !in_meta_ && (field_ == Field::Shape || field_ == Field::Offsets)) {
      ++depth_;
      return true;
    }
    return scalar("an array");
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    bad(std::string("invalid header: ") + ex.what());
  }

 private:
  enum class Field { None, DType, Shape, Offsets };
  [[noreturn]] void bad(const std::string& why) { fail(name_, "invalid safetensors header: " + why); }
  bool scalar(const char* what) {
    if (depth_ == 0) bad(std::string("top level is ") + what + ", expected an object");
    if (depth_ == 1) bad("entry '" + key1_ + "' is " + what + ", expected an object");
    if (in_meta_) bad("__metadata__ value for '" + key2_ + "' is " + what + ", expected a string");
    bad("tensor '" + key1_ + "' field '" + key2_ + "' has an unexpected value (" + what + ")");
  }
  bool number_bad(const char* what) {
    if (depth_ == 3) bad("tensor '" + key1_ + "' has an invalid " + (field_ == Field::Shape ? "shape" : "offset") +
                         ": " + what + " (must be a non-negative integer below 2^64)");
    return scalar(what);
  }

  const std::string& name_;
  SafetensorsHeader& out_;
  int depth_ = 0;
  bool in_meta_ = false, seen_meta_ = false;
  std::string key1_, key2_;
  Field field_ = Field::None;
  SafetensorsEntry cur_;
  std::vector<uint64_t> offsets_;
  std::set<std::string> names_, fields_;
};

}  // namespace

SafetensorsHeader parse_safetensors(ByteSpan file, const std::string& name) {
  const uint64_t size = file.size();
  if (size == 0) fail(name, "is empty (0 bytes)");
  if (size < 8) fail(name, "header too small: " + std::to_string(size) + " bytes, not a safetensors file");
  uint64_t n = detail::rd64(file.data());
  if (n > kMaxHeader) fail(name, "header too large: declared header length " + std::to_string(n) + " exceeds 100000000");
  if (8 + n > size)
    fail(name, "invalid header length " + std::to_string(n) + ": file has only " + std::to_string(size) +
                   " bytes (truncated?)");
  const char* h = reinterpret_cast<const char*>(file.data() + 8);
  if (n < 2 || h[0] != '{') fail(name, "invalid safetensors header: it must start with '{'");
  size_t len = size_t(n);
  while (len > 0 && h[len - 1] == ' ') --len;  // only trailing spaces may pad the header
  if (len == 0 || h[len - 1] != '}') fail(name, "invalid safetensors header: must end with '}' followed only by spaces");
  SafetensorsHeader out;
  out.data_start = 8 + n;
  HeaderSax sax(name, out);
  nlohmann::json::sax_parse(h, h + len, &sax, nlohmann::json::input_format_t::json, true);
  // Rules 7-11.
  std::vector<std::string> problems;
  for (auto& e : out.tensors) {
    const DTypeInfo* d = find_dtype(e.dtype);
    if (!d) {
      problems.push_back("unknown dtype '" + e.dtype + "' for tensor '" + e.name + "'");
      continue;
    }
    e.bits = d->bits;
    e.dtype_enum = d->dt;
    uint64_t nel = 1, nbits;
    bool ok = true;
    for (uint64_t s : e.shape) ok = ok && detail::mul_ok(nel, s, &nel);
    if (!ok || !detail::mul_ok(nel, d->bits, &nbits)) {
      problems.push_back("validation overflow computing the size of tensor '" + e.name + "'");
      continue;
    }
    if (nbits % 8) problems.push_back("misaligned slice: tensor '" + e.name + "' is not a whole number of bytes");
    else if (e.end < e.begin || e.end - e.begin != nbits / 8)
      problems.push_back(err_msg("invalid shape, data type, or offset for tensor '", e.name, "': ", e.dtype, " x",
                                 nel, " needs ", nbits / 8, " bytes but data_offsets are [", e.begin, ", ", e.end, "]"));
  }
  if (!problems.empty()) {
    std::string msg = "invalid safetensors header: ";
    for (size_t k = 0; k < problems.size(); ++k) msg += (k ? "; " : "") + problems[k];
    fail(name, msg);
  }
  std::stable_sort(out.tensors.begin(), out.tensors.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& e : out.tensors) {
    if (e.begin != expect)
      fail(name, err_msg("invalid offset for tensor '", e.name, "': begins at ", e.begin, " but the previous tensor ends at ",
                         expect, " (overlapping or with a hole)"));
    expect = e.end;
  }
  if (expect != size - out.data_start)
    fail(name, err_msg("incomplete metadata, file not fully covered: tensors cover ", expect, " bytes but the buffer has ",
                       size - out.data_start));
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  header_ = parse_safetensors(file_.bytes(), path);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& e : header_.tensors)
    if (e.name == name) return &e;
  return nullptr;
}

ByteSpan SafetensorsFile::view(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (!e) throw ValueError(quoted(path()) + ": no tensor named '" + name + "'");
  return file_.bytes().subspan(size_t(header_.data_start + e->begin), size_t(e->end - e->begin));
}

RawTensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (!e) throw ValueError(quoted(path()) + ": no tensor named '" + name + "'");
  if (!e->dtype_enum)
    fail(path(), "tensor '" + name + "' has dtype " + e->dtype + ", which gradstyle cannot load (use view())");
  RawTensor t;
  t.dtype = *e->dtype_enum;
  for (uint64_t s : e->shape) {
    if (s > uint64_t(INT64_MAX)) fail(path(), "tensor '" + name + "' has a dimension above 2^63");
    t.shape.push_back(int64_t(s));
  }
  ByteSpan b = view(name);
  t.data.assign(b.begin(), b.end());
  return t;
}

NamedTensors SafetensorsFile::load_all() const {
  NamedTensors out;
  for (const auto& e : header_.tensors) out.emplace_back(e.name, load(e.name));
  return out;
}

NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  SafetensorsFile f(path);
  if (metadata) *metadata = f.metadata();
  return f.load_all();
}

NamedTensors load_safetensors_bytes(ByteSpan bytes, const std::string& name,
                                    std::map<std::string, std::string>* metadata) {
  const SafetensorsHeader h = parse_safetensors(bytes, name);
  if (metadata) *metadata = h.metadata;
  NamedTensors out;
  for (const auto& e : h.tensors) {
    if (!e.dtype_enum) fail(name, "tensor '" + e.name + "' has dtype " + e.dtype + ", which gradstyle cannot load");
    RawTensor t;
    t.dtype = *e.dtype_enum;
    for (uint64_t d : e.shape) {
      if (d > uint64_t(INT64_MAX)) fail(name, "tensor '" + e.name + "' has a dimension above 2^63");
      t.shape.push_back(int64_t(d));
    }
    ByteSpan b = bytes.subspan(size_t(h.data_start + e.begin), size_t(e.end - e.begin));
    t.data.assign(b.begin(), b.end());
    out.emplace_back(e.name, std::move(t));
  }
  return out;
}

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::i16: return "I16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  return "?";
}

namespace {

// Header text (padded) and the tensors in write order.
std::string build_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                         std::vector<const std::pair<std::string, RawTensor>*>* order) {
  std::set<std::string> seen;
  for (const auto& nt : tensors) {
    if (nt.first.empty() || nt.first == "__metadata__" || !seen.insert(nt.first).second)
      throw ValueError("save_safetensors: invalid or duplicate tensor name '" + nt.first + "'");
    if (uint64_t(nt.second.numel()) * dtype_size(nt.second.dtype) != nt.second.data.size())
      throw ValueError("save_safetensors: tensor '" + nt.first + "' has " + std::to_string(nt.second.data.size()) +
                       " bytes, which does not match shape " + nt.second.shape_str());
    order->push_back(&nt);
  }
  std::sort(order->begin(), order->end(), [](const auto* a, const auto* b) {
    size_t ea = dtype_size(a->second.dtype), eb = dtype_size(b->second.dtype);
    return ea != eb ? ea > eb : a->first < b->first;
  });
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata.empty()) j["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto* nt : *order) {
    nlohmann::ordered_json e;
    e["dtype"] = safetensors_dtype_name(nt->second.dtype);
    e["shape"] = nlohmann::ordered_json::array();
    for (int64_t s : nt->second.shape) e["shape"].push_back(uint64_t(s));
    e["data_offsets"] = {off, off + nt->second.data.size()};
    off += nt->second.data.size();
    j[nt->first] = e;
  }
  std::string h = j.dump();
  h.append((64 - (8 + h.size()) % 64) % 64, ' ');  // buffer starts on a 64-byte boundary
  return h;
}

}  // namespace

std::vector<uint8_t> serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  std::vector<const std::pair<std::string, RawTensor>*> order;
  std::string h = build_header(tensors, metadata, &order);
  std::vector<uint8_t> out(8 + h.size());
  detail::wr64(out.data(), h.size());
  std::memcpy(out.data() + 8, h.data(), h.size());
  for (const auto* nt : order) out.insert(out.end(), nt->second.data.begin(), nt->second.data.end());
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<const std::pair<std::string, RawTensor>*> order;
  std::string h = build_header(tensors, metadata, &order);
  uint8_t len[8];
  detail::wr64(len, h.size());
  AtomicFileWriter w(path);
  w.write(len, 8);
  w.write(h.data(), h.size());
  for (const auto* nt : order) w.write(nt->second.data.data(), nt->second.data.size());
  w.commit();
}

}  // namespace gradstyle::io
