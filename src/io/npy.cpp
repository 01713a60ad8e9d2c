// .npy / .npz reader and writer (FORMATS.md §7).
#include "gradstyle/io/npy.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "checked.hpp"
#include "gradstyle/io/zip.hpp"

namespace gradstyle::io {

using detail::fail;

namespace {

// Tokenizer/parser for the header literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& name) : s_(s), name_(name) {}

  void parse(std::string* descr, bool* fortran, std::vector<int64_t>* shape) {
    expect('{');
    std::set<std::string> keys;
    while (true) {
      ws();
      if (peek() == '}') { ++p_; break; }
      std::string key = str();
      if (!keys.insert(key).second) bad("duplicate key '" + key + "'");
      expect(':');
      if (key == "descr") {
        *descr = str();
      } else if (key == "fortran_order") {
        ws();
        if (s_.substr(p_, 4) == "True") { *fortran = true; p_ += 4; }
        else if (s_.substr(p_, 5) == "False") { *fortran = false; p_ += 5; }
        else bad("fortran_order is not True or False");
      } else if (key == "shape") {
        expect('(');
        while (true) {
          ws();
          if (peek() == ')') { ++p_; break; }
          if (shape->size() >= 32) bad("shape has more than 32 dimensions");
          shape->push_back(integer());
          ws();
          if (peek() == ',') ++p_;
          else if (peek() != ')') bad("malformed shape tuple");
        }
      } else {
        bad("unexpected key '" + key + "' (only descr, fortran_order and shape are allowed)");
      }
      ws();
      if (peek() == ',') ++p_;
      else if (peek() != '}') bad("expected ',' or '}'");
    }
    ws();
    if (p_ != s_.size()) bad("trailing characters after the header dict");
    if (keys.size() != 3) bad("header must contain exactly descr, fortran_order and shape");
  }

 private:
  [[noreturn]] void bad(const std::string& why) { fail(name_, "invalid .npy header: " + why); }
  char peek() const { return p_ < s_.size() ? s_[p_] : '\0'; }
  void ws() { while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\t' || s_[p_] == '\r')) ++p_; }
  void expect(char c) {
    ws();
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++p_;
  }
  std::string str() {
    ws();
    char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    size_t end = s_.find(q, p_ + 1);
    if (end == std::string_view::npos || end - p_ > 64) bad("unterminated or overlong string");
    std::string out(s_.substr(p_ + 1, end - p_ - 1));
    p_ = end + 1;
    return out;
  }
  int64_t integer() {
    uint64_t v = 0;
    size_t start = p_;
    while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
      if (!detail::mul_ok(v, 10, &v) || !detail::add_ok(v, uint64_t(s_[p_] - '0'), &v) || v > uint64_t(INT64_MAX))
        bad("shape entry too large");
      ++p_;
    }
    if (p_ < s_.size() && s_[p_] == 'L') ++p_;  // Python 2 long suffix
    if (p_ == start) bad("shape entries must be non-negative integers");
    return int64_t(v);
  }
  std::string_view s_;
  size_t p_ = 0;
  const std::string& name_;
};

struct NpyType {
  DType dt;
  size_t file_size;  // bytes per element in the file
  bool swap;         // big-endian in the file
  bool u16;          // widen uint16 -> int32
};

NpyType parse_descr(const std::string& d, const std::string& name) {
  if (d.size() < 2) fail(name, "unsupported .npy dtype '" + d + "'");
  char order = d[0];
  std::string t = d.substr(1);
  if (t[0] == 'O') fail(name, ".npy object arrays ('" + d + "') are pickles and are refused");
  if (t[0] == 'U' || t[0] == 'S' || t[0] == 'V') fail(name, "string/void .npy dtype '" + d + "' is refused");
  if (order != '<' && order != '>' && order != '|' && order != '=')
    fail(name, "unsupported .npy dtype '" + d + "' (structured or unknown)");
  static const std::pair<const char*, DType> table[] = {{"f4", DType::f32}, {"f8", DType::f64}, {"f2", DType::f16},
                                                        {"i8", DType::i64}, {"i4", DType::i32}, {"i2", DType::i16},
                                                        {"i1", DType::i8},  {"u1", DType::u8},  {"b1", DType::boolean}};
  if (t == "u2") return {DType::i32, 2, order == '>', true};
  for (const auto& [n, dt] : table)
    if (t == n) {
      size_t es = dtype_size(dt);
      if (es > 1 && order == '|') fail(name, "invalid .npy dtype '" + d + "'");
      return {dt, es, es > 1 && order == '>', false};
    }
  fail(name, "unsupported .npy dtype '" + d + "'");
}

}  // namespace

RawTensor parse_npy(ByteSpan data, const std::string& name) {
  if (data.empty()) fail(name, "is empty (0 bytes)");
  if (data.size() < 10 || std::memcmp(data.data(), "\x93NUMPY", 6) != 0) fail(name, "is not a .npy file (wrong magic)");
  uint8_t major = data[6], minor = data[7];
  if (minor != 0 || major < 1 || major > 3)
    fail(name, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  detail::Cursor cur(data, 8, name, ".npy header");
  uint64_t hlen = major == 1 ? cur.u16() : cur.u32();
  if (hlen > 65536) fail(name, "invalid .npy header: length " + std::to_string(hlen) + " exceeds 65536");
  const uint8_t* hp = cur.take(hlen);
  std::string_view hs(reinterpret_cast<const char*>(hp), size_t(hlen));
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  HeaderParser(hs, name).parse(&descr, &fortran, &shape);
  NpyType ty = parse_descr(descr, name);
  uint64_t numel = 1, bytes;
  for (int64_t s : shape)
    if (!detail::mul_ok(numel, uint64_t(s), &numel)) fail(name, ".npy shape overflows");
  if (!detail::mul_ok(numel, ty.file_size, &bytes)) fail(name, ".npy size overflows");
  if (bytes != cur.remaining())
    fail(name, err_msg(".npy data is ", cur.remaining(), " bytes but shape ", RawTensor{ty.dt, shape, {}}.shape_str(),
                       " of '", descr, "' needs ", bytes, cur.remaining() < bytes ? " (truncated)" : " (trailing bytes)"));
  const uint8_t* src = cur.take(bytes);
  RawTensor t;
  t.dtype = ty.dt;
  t.shape = shape;
  const size_t es = dtype_size(ty.dt);
  t.data.resize(size_t(numel) * es);
  // Element-wise decode (byte swap, u16 widening) into C order.
  std::vector<uint8_t> elems(static_cast<size_t>(bytes));
  std::memcpy(elems.data(), src, size_t(bytes));
  if (ty.swap)
    for (size_t i = 0; i < numel; ++i) std::reverse(elems.begin() + ptrdiff_t(i * ty.file_size), elems.begin() + ptrdiff_t((i + 1) * ty.file_size));
  if (ty.u16) {
    std::vector<uint8_t> wide(size_t(numel) * 4);
    for (size_t i = 0; i < numel; ++i) {
      int32_t v = detail::rd16(&elems[i * 2]);
      std::memcpy(&wide[i * 4], &v, 4);
    }
    elems.swap(wide);
  }
  if (!fortran || shape.size() < 2) {
    t.data = std::move(elems);
    return t;
  }
  // Fortran order: file index = sum idx_k * prod_{j<k} shape_j. Walk C order with an odometer.
  const size_t rank = shape.size();
  std::vector<uint64_t> fstride(rank);
  uint64_t acc = 1;
  for (size_t k = 0; k < rank; ++k) {
    fstride[k] = acc;
    acc *= uint64_t(shape[k]);
  }
  if (numel == 0) return t;
  std::vector<int64_t> idx(rank, 0);
  for (uint64_t o = 0; o < numel; ++o) {
    uint64_t f = 0;
    for (size_t k = 0; k < rank; ++k) f += uint64_t(idx[k]) * fstride[k];
    std::memcpy(&t.data[size_t(o) * es], &elems[size_t(f) * es], es);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return t;
}

RawTensor load_npy(const std::string& path) {
  MappedFile f(path);
  return parse_npy(f.bytes(), path);
}

std::vector<uint8_t> serialize_npy(const RawTensor& t) {
  const char* descr = nullptr;
  switch (t.dtype) {
    case DType::f32: descr = "<f4"; break;
    case DType::f64: descr = "<f8"; break;
    case DType::f16: descr = "<f2"; break;
    case DType::i64: descr = "<i8"; break;
    case DType::i32: descr = "<i4"; break;
    case DType::i16: descr = "<i2"; break;
    case DType::i8: descr = "|i1"; break;
    case DType::u8: descr = "|u1"; break;
    case DType::boolean: descr = "|b1"; break;
    case DType::bf16: throw DTypeError("save_npy: NumPy has no bfloat16; convert the tensor to float32 first");
  }
  if (uint64_t(t.numel()) * dtype_size(t.dtype) != t.data.size())
    throw ValueError("save_npy: tensor data size does not match shape " + t.shape_str());
  std::string h = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t k = 0; k < t.shape.size(); ++k) h += std::to_string(t.shape[k]) + (t.shape.size() == 1 ? "," : (k + 1 < t.shape.size() ? ", " : ""));
  h += "), }";
  size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  if (h.size() > 65535) throw ValueError("save_npy: header too long");
  std::vector<uint8_t> out(10 + h.size());
  const uint8_t magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::memcpy(out.data(), magic, 8);
  detail::wr16(&out[8], uint16_t(h.size()));
  std::memcpy(out.data() + 10, h.data(), h.size());
  out.insert(out.end(), t.data.begin(), t.data.end());
  return out;
}

void save_npy(const std::string& path, const RawTensor& t) { atomic_write_file(path, serialize_npy(t)); }

NamedTensors parse_npz(ByteSpan data, const std::string& name) {
  if (data.empty()) fail(name, "is empty (0 bytes)");
  ZipArchive zip(data, name);
  NamedTensors out;
  for (const auto& e : zip.entries()) {
    if (e.name.size() <= 4 || e.name.compare(e.name.size() - 4, 4, ".npy") != 0)
      fail(name, "zip member '" + e.name + "' is not a .npy array; not an .npz file");
    std::vector<uint8_t> bytes = zip.extract(e);
    out.emplace_back(e.name.substr(0, e.name.size() - 4),
                     parse_npy(ByteSpan(bytes.data(), bytes.size()), name + ":" + e.name));
  }
  return out;
}

NamedTensors load_npz(const std::string& path) {
  MappedFile f(path);
  return parse_npz(f.bytes(), path);
}

std::vector<uint8_t> serialize_npz(const NamedTensors& tensors) {
  ZipWriter zw(64);
  std::set<std::string> seen;
  for (const auto& [n, t] : tensors) {
    if (n.empty() || !seen.insert(n).second) throw ValueError("save_npz: invalid or duplicate array name '" + n + "'");
    std::vector<uint8_t> b = serialize_npy(t);
    zw.add(n + ".npy", ByteSpan(b.data(), b.size()));
  }
  return zw.finish();
}

void save_npz(const std::string& path, const NamedTensors& tensors) { atomic_write_file(path, serialize_npz(tensors)); }

}  // namespace gradstyle::io
