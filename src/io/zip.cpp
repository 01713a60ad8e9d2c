// ZIP directory parsing (classic + zip64) and a stored-entry writer. FORMATS.md §2.1.
#include "gradstyle/io/zip.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "checked.hpp"
#include <zlib.h>

namespace gradstyle::io {

using detail::fail;
using detail::in_range;
using detail::rd16;
using detail::rd32;
using detail::rd64;

uint32_t crc32(ByteSpan data, uint32_t crc) {
  // zlib's crc32 (the same CRC-32, several times faster than a byte-wise table); in chunks, as its
  // length argument is 32-bit.
  uLong c = crc;
  const uint8_t* p = data.data();
  for (size_t left = data.size(); left > 0;) {
    const uInt n = uInt(std::min<size_t>(left, size_t(1) << 30));
    c = ::crc32(c, p, n);
    p += n;
    left -= n;
  }
  return uint32_t(c);
}

namespace {
constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50, kZip64LocSig = 0x07064b50;
constexpr size_t kEocdSize = 22, kCentralSize = 46, kLocalSize = 30;
}  // namespace

ZipArchive::ZipArchive(ByteSpan data, std::string name) : data_(data), name_(std::move(name)) {
  const uint64_t size = data.size();
  const uint8_t* d = data.data();
  auto bad = [&](const std::string& why) { fail(name_, why); };
  if (size < kEocdSize)
    bad("is truncated or not a zip (" + human_size(size) + ", smaller than an end-of-central-directory record)");
  // 1. EOCD: search backwards over at most 22 + 65535 bytes; the comment must end the file.
  uint64_t eocd = UINT64_MAX;
  uint64_t lowest = size > kEocdSize + 65535 ? size - kEocdSize - 65535 : 0;
  for (uint64_t p = size - kEocdSize + 1; p-- > lowest;) {
    if (rd32(d + p) == kEocdSig && p + kEocdSize + rd16(d + p + 20) == size) {
      eocd = p;
      break;
    }
  }
  if (eocd == UINT64_MAX)
    bad("is truncated or not a zip (no end-of-central-directory record; file is " + human_size(size) +
        "). Re-download it.");
  uint64_t disk = rd16(d + eocd + 4), cd_disk = rd16(d + eocd + 6);
  uint64_t count = rd16(d + eocd + 10), cd_size = rd32(d + eocd + 12), cd_offset = rd32(d + eocd + 16);
  uint64_t cd_limit = eocd;  // the central directory must end before this
  // 2. zip64 locator just before the EOCD.
  if (eocd >= 20 && rd32(d + eocd - 20) == kZip64LocSig) {
    uint64_t z64 = rd64(d + eocd - 20 + 8);
    if (!in_range(z64, 56, eocd - 20) || rd32(d + z64) != kZip64EocdSig)
      bad("zip64 end-of-central-directory locator points to an invalid record");
    disk = rd32(d + z64 + 16);
    cd_disk = rd32(d + z64 + 20);
    count = rd64(d + z64 + 32);
    cd_size = rd64(d + z64 + 40);
    cd_offset = rd64(d + z64 + 48);
    cd_limit = z64;
  } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    bad("zip64 values without a zip64 locator");
  }
  if (disk != 0 || cd_disk != 0) bad("multi-disk zip archives are not supported");
  // 3. Directory inside the file; the count is bounded by the directory size before reserving.
  if (!in_range(cd_offset, cd_size, cd_limit))
    bad("central directory [" + std::to_string(cd_offset) + ", +" + std::to_string(cd_size) + ") lies outside the file");
  if (count > cd_size / kCentralSize)
    bad("zip directory claims " + std::to_string(count) + " entries but has room for " +
        std::to_string(cd_size / kCentralSize));
  entries_.reserve(size_t(count));
  uint64_t p = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t k = 0; k < count; ++k) {
    if (!in_range(p, kCentralSize, cd_end) || rd32(d + p) != kCentralSig)
      bad("zip central directory entry " + std::to_string(k) + " is corrupt");
    ZipEntry e;
    e.flags = rd16(d + p + 8);
    e.method = rd16(d + p + 10);
    e.crc = rd32(d + p + 16);
    e.compressed_size = rd32(d + p + 20);
    e.size = rd32(d + p + 24);
    uint64_t nlen = rd16(d + p + 28), xlen = rd16(d + p + 30), clen = rd16(d + p + 32);
    e.local_header_offset = rd32(d + p + 42);
    if (!in_range(p + kCentralSize, nlen + xlen + clen, cd_end))
      bad("zip central directory entry " + std::to_string(k) + " runs past the directory");
    e.name.assign(reinterpret_cast<const char*>(d + p + kCentralSize), size_t(nlen));
    // zip64 extra field: only the saturated values are present, in this order.
    bool need_u = e.size == 0xFFFFFFFF, need_c = e.compressed_size == 0xFFFFFFFF, need_o = e.local_header_offset == 0xFFFFFFFF;
    if (need_u || need_c || need_o) {
      bool found = false;
      for (uint64_t x = p + kCentralSize + nlen, xend = x + xlen; x + 4 <= xend;) {
        uint16_t id = rd16(d + x), len = rd16(d + x + 2);
        if (x + 4 + len > xend) break;
        if (id == 0x0001) {
          uint64_t q = x + 4, qend = q + len;
          auto next = [&](uint64_t* v) {
            if (q + 8 > qend) bad("zip64 extra field of '" + e.name + "' is too short");
            *v = rd64(d + q);
            q += 8;
          };
          if (need_u) next(&e.size);
          if (need_c) next(&e.compressed_size);
          if (need_o) next(&e.local_header_offset);
          found = true;
          break;
        }
        x += 4 + len;
      }
      if (!found) bad("entry '" + e.name + "' has saturated sizes but no zip64 extra field");
    }
    if (e.name.empty() || e.name.find('\0') != std::string::npos) bad("zip entry with an empty or invalid name");
    if (!index_.emplace(e.name, entries_.size()).second) bad("duplicate zip entry '" + e.name + "'");
    if (e.flags & 0x0001) bad("zip entry '" + e.name + "' is encrypted");
    if (e.method == 0 && e.compressed_size != e.size)
      bad("stored zip entry '" + e.name + "' has compressed size " + std::to_string(e.compressed_size) +
          " != size " + std::to_string(e.size));
    // 4. Local header at the recorded offset; data range inside the file.
    uint64_t lh = e.local_header_offset;
    if (!in_range(lh, kLocalSize, cd_offset) || rd32(d + lh) != kLocalSig)
      bad("zip entry '" + e.name + "' points to offset " + std::to_string(lh) + ", outside the file or not a local header");
    uint64_t lnlen = rd16(d + lh + 26), lxlen = rd16(d + lh + 28);
    if (!in_range(lh + kLocalSize, lnlen + lxlen, cd_offset)) bad("zip local header of '" + e.name + "' is truncated");
    if (lnlen != nlen || std::memcmp(d + lh + kLocalSize, e.name.data(), nlen) != 0)
      bad("zip local header name differs from the central directory for '" + e.name + "'");
    e.data_offset = lh + kLocalSize + lnlen + lxlen;
    if (!in_range(e.data_offset, e.compressed_size, cd_offset))
      bad("zip entry '" + e.name + "' data [" + std::to_string(e.data_offset) + ", +" +
          std::to_string(e.compressed_size) + ") lies outside the file");
    entries_.push_back(std::move(e));
    p += kCentralSize + nlen + xlen + clen;
  }
  // Entries may not overlap (header + data of each against the next header).
  std::vector<const ZipEntry*> order;
  for (const auto& e : entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->local_header_offset < b->local_header_offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    if (order[k]->local_header_offset < order[k - 1]->data_offset + order[k - 1]->compressed_size)
      bad("zip entries '" + order[k - 1]->name + "' and '" + order[k]->name + "' overlap");
  }
}

const ZipEntry* ZipArchive::find(const std::string& n) const {
  auto it = index_.find(n);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

ByteSpan ZipArchive::stored_data(const ZipEntry& e) const {
  if (e.method != 0)
    fail(name_, "zip entry '" + e.name + "' is compressed (method " + std::to_string(e.method) +
                    "); PyTorch checkpoints store entries uncompressed");
  return data_.subspan(size_t(e.data_offset), size_t(e.size));
}

namespace {

// Raw deflate (no zlib header) of `in` with zlib. The output grows with what the stream really
// produces, never past `declared` + 1 bytes, so a member that lies about its size cannot make us
// allocate more than it inflates to, nor inflate more than it declared.
std::vector<uint8_t> inflate_member(ByteSpan in, uint64_t declared, const std::string& archive,
                                    const std::string& member) {
  auto bad = [&](const std::string& why) { fail(archive, "compressed zip entry '" + member + "' " + why); };
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw IOError("zlib: inflateInit2 failed (out of memory?)");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};
  const uint64_t limit = declared + 1;  // one byte of room to notice an over-long stream
  std::vector<uint8_t> out;
  uint64_t in_pos = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.total_out == out.size()) {
      if (out.size() >= limit) break;  // full: the stream wants more than declared + 1 bytes
      const uint64_t grown = std::min<uint64_t>(limit, std::max<uint64_t>(uint64_t(1) << 20, 2 * uint64_t(out.size())));
      out.resize(size_t(grown));
    }
    if (zs.avail_in == 0 && in_pos < in.size()) {
      const uint64_t n = std::min<uint64_t>(in.size() - in_pos, uint64_t(1) << 30);
      zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
      zs.avail_in = uInt(n);
      in_pos += n;
    }
    const uint64_t room = std::min<uint64_t>(out.size() - zs.total_out, uint64_t(1) << 30);
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = uInt(room);
    const uLong before_in = zs.total_in, before_out = zs.total_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_DATA_ERROR)
      bad(std::string("is corrupt (inflate: ") + (zs.msg ? zs.msg : "invalid deflate data") + ")");
    if (rc == Z_MEM_ERROR) throw IOError("zlib: out of memory inflating zip entry '" + member + "'");
    if (rc == Z_BUF_ERROR && zs.total_in == before_in && zs.total_out == before_out)  // no input left
      bad(err_msg("is truncated (the deflate stream ends without its last block after ", zs.total_out,
                  " bytes, declared ", declared, ")"));
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) bad(err_msg("could not be inflated (zlib error ", rc, ")"));
  }
  if (zs.total_out > declared)
    bad(err_msg("inflates to more than its declared size of ", declared, " bytes (corrupt or a decompression bomb)"));
  if (zs.total_out < declared) bad(err_msg("inflates to ", zs.total_out, " bytes but declares ", declared));
  out.resize(size_t(declared));
  return out;
}

}  // namespace

std::vector<uint8_t> ZipArchive::extract(const ZipEntry& e) const {
  if (e.method == 0) {
    ByteSpan s = stored_data(e);
    return std::vector<uint8_t>(s.begin(), s.end());
  }
  if (e.method != 8)
    fail(name_, "zip entry '" + e.name + "' uses unsupported compression method " + std::to_string(e.method));
  // Deflate expands at most 1032:1; anything claiming more is corrupt (or a bomb) and is refused
  // before any memory is taken.
  uint64_t cap;
  if (!detail::mul_ok(e.compressed_size, 1032, &cap) || e.size > cap + 1024 || e.size > (uint64_t(1) << 62))
    fail(name_, "compressed zip entry '" + e.name + "' declares an implausible size " + std::to_string(e.size) +
                    " for " + std::to_string(e.compressed_size) + " compressed bytes");
  ByteSpan in = data_.subspan(size_t(e.data_offset), size_t(e.compressed_size));
  std::vector<uint8_t> out = inflate_member(in, e.size, name_, e.name);
  if (crc32(ByteSpan(out.data(), out.size())) != e.crc) fail(name_, "CRC-32 mismatch in zip entry '" + e.name + "'");
  return out;
}

void ZipArchive::verify_crc(const ZipEntry& e) const {
  if (e.method != 0) {
    (void)extract(e);  // extract checks the CRC
    return;
  }
  uint32_t c = crc32(stored_data(e));
  if (c != e.crc)
    fail(name_, "CRC-32 mismatch in zip entry '" + e.name + "' (corrupt file; re-download it)");
}

void ZipWriter::add(const std::string& name, ByteSpan data) {
  if (data.size() > 0xFFFFFFF0ull || out_.size() > 0xFFFFFFF0ull - data.size() - 1024)
    throw IOError("zip writer: archives above 4 GiB are not supported ('" + name + "')");
  if (name.empty() || name.size() > 0xFFFF || central_.size() >= 0xFFFF)
    throw ValueError("zip writer: invalid entry name or too many entries ('" + name + "')");
  Central c{name, crc32(data), uint32_t(data.size()), uint32_t(out_.size())};
  size_t base = out_.size() + kLocalSize + name.size();
  size_t pad = 0;
  if (align_ > 1) {
    size_t with_hdr = base + 4;  // the FB extra field header itself
    pad = (align_ - with_hdr % align_) % align_;
  }
  uint16_t xlen = align_ > 1 ? uint16_t(4 + pad) : 0;
  std::vector<uint8_t> h(kLocalSize);
  detail::wr32(&h[0], kLocalSig);
  detail::wr16(&h[4], 20);   // version needed
  detail::wr16(&h[6], 0);    // flags
  detail::wr16(&h[8], 0);    // stored
  detail::wr32(&h[14], c.crc);
  detail::wr32(&h[18], c.size);
  detail::wr32(&h[22], c.size);
  detail::wr16(&h[26], uint16_t(name.size()));
  detail::wr16(&h[28], xlen);
  out_.insert(out_.end(), h.begin(), h.end());
  out_.insert(out_.end(), name.begin(), name.end());
  if (xlen) {
    out_.push_back('F');
    out_.push_back('B');
    out_.push_back(uint8_t(pad));
    out_.push_back(uint8_t(pad >> 8));
    out_.insert(out_.end(), pad, 'Z');
  }
  out_.insert(out_.end(), data.begin(), data.end());
  central_.push_back(std::move(c));
}

std::vector<uint8_t> ZipWriter::finish() {
  uint32_t cd_offset = uint32_t(out_.size());
  for (const auto& c : central_) {
    std::vector<uint8_t> h(kCentralSize, 0);
    detail::wr32(&h[0], kCentralSig);
    detail::wr16(&h[4], 20);
    detail::wr16(&h[6], 20);
    detail::wr32(&h[16], c.crc);
    detail::wr32(&h[20], c.size);
    detail::wr32(&h[24], c.size);
    detail::wr16(&h[28], uint16_t(c.name.size()));
    detail::wr32(&h[42], c.offset);
    out_.insert(out_.end(), h.begin(), h.end());
    out_.insert(out_.end(), c.name.begin(), c.name.end());
  }
  uint32_t cd_size = uint32_t(out_.size() - cd_offset);
  std::vector<uint8_t> e(kEocdSize, 0);
  detail::wr32(&e[0], kEocdSig);
  detail::wr16(&e[8], uint16_t(central_.size()));
  detail::wr16(&e[10], uint16_t(central_.size()));
  detail::wr32(&e[12], cd_size);
  detail::wr32(&e[16], cd_offset);
  out_.insert(out_.end(), e.begin(), e.end());
  return std::move(out_);
}

}  // namespace gradstyle::io
