// PyTorch .pt reader: zip container (FORMATS.md §2) and legacy stream (§3).
#include "gradstyle/io/torch_pt.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "checked.hpp"
#include "gradstyle/io/checkpoint.hpp"
#include "gradstyle/io/sniff.hpp"
#include "gradstyle/io/zip.hpp"

namespace gradstyle::io {

using detail::fail;

namespace {

constexpr uint64_t kMaxPickleBytes = uint64_t(1) << 30;

// Copies a (possibly strided) view out of its storage bytes into a contiguous buffer.
void copy_view(const TensorRef& t, ByteSpan storage_bytes, uint64_t base_elem, RawTensor* out) {
  const size_t es = dtype_size(t.storage->dtype);
  const size_t rank = t.size.size();
  const uint8_t* src = storage_bytes.data();
  uint8_t* dst = out->data.data();
  if (out->data.empty()) return;
  const uint64_t start = base_elem + uint64_t(t.storage_offset);
  if (rank == 0) {
    std::memcpy(dst, src + start * es, es);
    return;
  }
  // Contiguous fast path.
  bool contiguous = true;
  for (int64_t k = int64_t(rank) - 1, expect = 1; k >= 0; --k) {
    if (t.size[size_t(k)] != 1 && t.stride[size_t(k)] != expect) contiguous = false;
    expect *= t.size[size_t(k)];
  }
  if (contiguous) {
    std::memcpy(dst, src + start * es, out->data.size());
    return;
  }
  std::vector<int64_t> idx(rank - 1, 0);  // odometer over the outer dims
  const int64_t inner = t.size[rank - 1], inner_stride = t.stride[rank - 1];
  size_t o = 0;
  while (true) {
    uint64_t off = start;
    for (size_t k = 0; k + 1 < rank; ++k) off += uint64_t(idx[k]) * uint64_t(t.stride[k]);
    if (inner_stride == 1) {
      std::memcpy(dst + o, src + off * es, size_t(inner) * es);
      o += size_t(inner) * es;
    } else {
      for (int64_t j = 0; j < inner; ++j, o += es) std::memcpy(dst + o, src + (off + uint64_t(j * inner_stride)) * es, es);
    }
    size_t k = rank - 1;
    bool done = true;
    while (k > 0) {
      --k;
      if (++idx[k] < t.size[k]) {
        done = false;
        break;
      }
      idx[k] = 0;
    }
    if (done) return;
  }
}

// Materialises every tensor. `storage_bytes(ref)` returns the bytes of the whole root storage
// (already checked to hold exactly numel * elemsize bytes).
void materialize(std::vector<std::shared_ptr<TensorRef>>& tensors, const std::string& name, uint64_t budget,
                 const std::function<ByteSpan(const StorageRef&)>& storage_bytes) {
  uint64_t total = 0;
  for (auto& t : tensors) {
    const StorageRef& st = *t->storage;
    const size_t es = dtype_size(st.dtype);
    uint64_t numel = 1, bytes;
    for (int64_t s : t->size) detail::mul_ok(numel, uint64_t(s), &numel);  // checked by the unpickler
    if (!detail::mul_ok(numel, es, &bytes) || !detail::add_ok(total, bytes, &total) || total > budget)
      fail(name, err_msg("tensors need more than ", human_size(budget),
                         " once materialised (many views of one storage?); refusing to allocate"));
    ByteSpan sb = storage_bytes(st);
    t->value.dtype = st.dtype;
    t->value.shape = t->size;
    t->value.data.assign(size_t(bytes), 0);
    copy_view(*t, sb, st.is_view ? st.view_offset : 0, &t->value);
    t->materialized = true;
  }
}

uint64_t default_budget(uint64_t file_size, const PtLoadOptions& o) {
  if (o.max_tensor_bytes) return o.max_tensor_bytes;
  uint64_t b = file_size > (uint64_t(1) << 60) ? UINT64_MAX : file_size * 4;
  return std::max<uint64_t>(b, uint64_t(64) << 20);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

PtCheckpoint parse_zip(ByteSpan data, const std::string& name, const PtLoadOptions& opts) {
  ZipArchive zip(data, name);
  PtCheckpoint ck;
  ck.format = PtFormat::Zip;
  const auto& entries = zip.entries();
  if (entries.empty()) fail(name, "is an empty zip archive, not a PyTorch checkpoint");
  const std::string& first = entries.front().name;
  auto slash = first.find('/');
  if (is_npz_archive(zip)) fail(name, "is a NumPy .npz archive, not a PyTorch checkpoint; load it with load_npz");
  if (slash == std::string::npos || slash == 0)
    fail(name, "is a zip archive that is not a checkpoint (entry '" + first + "' has no root folder)");
  ck.root = first.substr(0, slash);
  const std::string prefix = ck.root + "/";
  for (const auto& e : entries) {
    if (e.name.compare(0, prefix.size(), prefix) != 0)
      fail(name, "zip entry '" + e.name + "' is outside the root folder '" + ck.root + "' of the checkpoint");
    ck.records.push_back(e.name);
    if (opts.verify_crc) zip.verify_crc(e);
  }
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  if (!pkl) fail(name, "is a zip archive that is not a checkpoint (no " + prefix + "data.pkl)");
  for (const char* vname : {"version", ".data/version"}) {
    if (const ZipEntry* v = zip.find(prefix + vname)) {
      ByteSpan b = zip.stored_data(*v);
      std::string s = trim(std::string(reinterpret_cast<const char*>(b.data()), std::min<size_t>(b.size(), 32)));
      if (s != "1" && s != "2" && s != "3")
        fail(name, "unsupported checkpoint format version '" + s + "' in " + v->name + " (supported: 1-3)");
      ck.version = s[0] - '0';
    }
  }
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    ByteSpan b = zip.stored_data(*bo);
    std::string s = trim(std::string(reinterpret_cast<const char*>(b.data()), std::min<size_t>(b.size(), 32)));
    if (s == "big") fail(name, "is a big-endian checkpoint (byteorder 'big'); re-save it on a little-endian machine");
    if (s != "little") fail(name, "unknown byteorder '" + s + "'");
  }
  ByteSpan pk = zip.stored_data(*pkl);
  if (pk.size() > kMaxPickleBytes) fail(name, "data.pkl is larger than 1 GiB");
  PickleResult r = unpickle(pk, 0, name, "data.pkl", PersistentIdStyle::Zip, opts.limits);
  if (r.end != pk.size()) fail(name, "data.pkl has " + std::to_string(pk.size() - r.end) + " trailing bytes after STOP");
  // Resolve storages to their records.
  std::unordered_map<std::string, ByteSpan> bytes_of;
  for (const auto& st : r.storages) {
    const ZipEntry* e = zip.find(prefix + "data/" + st->key);
    if (!e) fail(name, "storage '" + st->key + "' has no record " + prefix + "data/" + st->key);
    uint64_t want;
    if (!detail::mul_ok(st->numel, dtype_size(st->dtype), &want) || want != e->size)
      fail(name, err_msg("record ", e->name, " has ", e->size, " bytes but its storage holds ", st->numel, " ",
                         dtype_name(st->dtype), " elements"));
    bytes_of[st->key] = zip.stored_data(*e);
  }
  materialize(r.tensors, name, default_budget(data.size(), opts),
              [&](const StorageRef& st) { return bytes_of.at(st.key); });
  ck.value = r.value;
  ck.globals = std::move(r.globals);
  ck.storages = std::move(r.storages);
  ck.tensors = std::move(r.tensors);
  return ck;
}

PtCheckpoint parse_legacy(ByteSpan data, const std::string& name, const PtLoadOptions& opts) {
  PtCheckpoint ck;
  ck.format = PtFormat::Legacy;
  // 1. magic (compared byte for byte by the sniffer; its LONG1 is 10 bytes, too long for the VM).
  if (data.size() < 15 || data[14] != '.') fail(name, "legacy checkpoint: invalid magic number pickle");
  size_t pos = 15;
  // 2. protocol version.
  PickleResult pv = unpickle(data, pos, name, "the protocol-version header", PersistentIdStyle::Legacy, opts.limits);
  if (pv.value->kind != PyKind::Int || pv.value->i != 1001)
    fail(name, "legacy checkpoint: invalid protocol version " + pv.value->repr(40) + " (expected 1001)");
  ck.version = 1001;
  // 3. sys_info.
  PickleResult si = unpickle(data, pv.end, name, "sys_info", PersistentIdStyle::Legacy, opts.limits);
  const PyValue* le = si.value->get("little_endian");
  if (!si.value->is_dict() || !le || le->kind != PyKind::Bool)
    fail(name, "legacy checkpoint: sys_info is not a dict with 'little_endian'");
  if (!le->b) fail(name, "legacy checkpoint was written on a big-endian machine; re-save it on a little-endian one");
  // 4. the object.
  PickleResult obj = unpickle(data, si.end, name, "the object pickle", PersistentIdStyle::Legacy, opts.limits);
  // 5. sorted list of storage keys.
  PickleResult keys = unpickle(data, obj.end, name, "the storage key list", PersistentIdStyle::Legacy, opts.limits);
  if (keys.value->kind != PyKind::List) fail(name, "legacy checkpoint: storage key list is not a list");
  std::unordered_map<std::string, std::shared_ptr<StorageRef>> by_key;
  for (const auto& st : obj.storages) by_key[st->key] = st;
  std::unordered_map<std::string, ByteSpan> bytes_of;
  // 6. each storage: int64 element count then raw bytes.
  detail::Cursor cur(data, keys.end, name, "legacy storage data");
  for (const auto& k : keys.value->items) {
    if (k->kind != PyKind::String) fail(name, "legacy checkpoint: storage key is not a string");
    auto it = by_key.find(k->s);
    if (it == by_key.end()) fail(name, "legacy checkpoint: storage '" + k->s + "' is listed but never used");
    if (bytes_of.count(k->s)) fail(name, "legacy checkpoint: storage '" + k->s + "' is listed twice");
    const StorageRef& st = *it->second;
    uint64_t count = cur.u64();
    if (count != st.numel)
      fail(name, err_msg("legacy checkpoint: storage '", k->s, "' has ", count, " elements but the object says ", st.numel));
    uint64_t nbytes;
    if (!detail::mul_ok(count, dtype_size(st.dtype), &nbytes)) fail(name, "legacy checkpoint: storage size overflows");
    const uint8_t* p = cur.take(nbytes);
    bytes_of[k->s] = ByteSpan(p, size_t(nbytes));
  }
  if (!cur.at_end())
    fail(name, err_msg("legacy checkpoint: ", cur.remaining(), " unexpected bytes after the last storage"));
  for (const auto& st : obj.storages)
    if (!bytes_of.count(st->key)) fail(name, "legacy checkpoint: storage '" + st->key + "' is used but has no data");
  materialize(obj.tensors, name, default_budget(data.size(), opts),
              [&](const StorageRef& st) { return bytes_of.at(st.key); });
  ck.value = obj.value;
  ck.globals = std::move(obj.globals);
  ck.storages = std::move(obj.storages);
  ck.tensors = std::move(obj.tensors);
  return ck;
}

}  // namespace

PtCheckpoint parse_pt(ByteSpan data, const std::string& name, const PtLoadOptions& opts) {
  FileKind k = sniff_bytes(data, data.size());
  if (k == FileKind::Zip) return parse_zip(data, name, opts);
  if (k == FileKind::LegacyTorch) return parse_legacy(data, name, opts);
  throw FormatError(refusal_message(name, k, data, "a PyTorch checkpoint"));
}

PtCheckpoint load_pt(const std::string& path, const PtLoadOptions& opts) {
  MappedFile f(path);
  return parse_pt(f.bytes(), path, opts);
}

}  // namespace gradstyle::io
