#include "gradstyle/io/sniff.hpp"

#include <cstring>

#include "checked.hpp"

namespace gradstyle::io {

const char* file_kind_name(FileKind k) {
  switch (k) {
    case FileKind::Empty: return "empty file";
    case FileKind::Zip: return "zip archive";
    case FileKind::LegacyTorch: return "legacy PyTorch checkpoint";
    case FileKind::TorchTar: return "PyTorch <= 0.3 tar checkpoint";
    case FileKind::Npy: return "NumPy .npy array";
    case FileKind::Safetensors: return "safetensors file";
    case FileKind::BarePickle: return "bare Python pickle";
    case FileKind::Html: return "HTML page";
    case FileKind::GitLfs: return "Git LFS pointer";
    case FileKind::Png: return "PNG image";
    case FileKind::Jpeg: return "JPEG image";
    case FileKind::Bmp: return "BMP image";
    case FileKind::Unknown: return "unknown format";
  }
  return "?";
}

namespace {
bool starts(ByteSpan b, const char* lit, size_t n) { return b.size() >= n && std::memcmp(b.data(), lit, n) == 0; }
const uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19};
}  // namespace

FileKind sniff_bytes(ByteSpan b, uint64_t file_size) {
  if (file_size == 0 || b.empty()) return FileKind::Empty;
  if (starts(b, "PK\x03\x04", 4)) return FileKind::Zip;
  if (b.size() >= sizeof kLegacyMagic && std::memcmp(b.data(), kLegacyMagic, sizeof kLegacyMagic) == 0)
    return FileKind::LegacyTorch;
  if (b.size() >= 262 && std::memcmp(b.data() + 257, "ustar", 5) == 0) return FileKind::TorchTar;
  if (starts(b, "\x93NUMPY", 6)) return FileKind::Npy;
  if (b.size() >= 9) {
    uint64_t n = detail::rd64(b.data());
    if (n >= 2 && n <= 100'000'000 && 8 + n <= file_size && b[8] == '{') return FileKind::Safetensors;
  }
  if (b.size() >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) return FileKind::BarePickle;
  if (starts(b, "<", 1)) return FileKind::Html;
  if (starts(b, "version https://git-lfs", 23)) return FileKind::GitLfs;
  if (starts(b, "\x89PNG\r\n\x1a\n", 8)) return FileKind::Png;
  if (starts(b, "\xFF\xD8\xFF", 3)) return FileKind::Jpeg;
  if (starts(b, "BM", 2)) return FileKind::Bmp;
  return FileKind::Unknown;
}

FileKind sniff_file(const std::string& path) {
  MappedFile f(path);
  return sniff_bytes(f.bytes(), f.size());
}

std::string refusal_message(const std::string& name, FileKind kind, ByteSpan head, const std::string& wanted) {
  std::string q = quoted(name);
  switch (kind) {
    case FileKind::Empty: return q + " is empty (0 bytes)";
    case FileKind::TorchTar: return q + " is a pre-0.4 PyTorch tar checkpoint: re-save it with a modern PyTorch";
    case FileKind::BarePickle:
      return q + " is a bare Python pickle (e.g. an NVIDIA network .pkl), not a torch.save checkpoint; loading it "
                 "would execute code. Convert it with the offline converter in tools/";
    case FileKind::Html: return q + " is an HTML page, probably a download-quota or login page, not weights";
    case FileKind::GitLfs: return q + " is a Git LFS pointer file; run `git lfs pull` to get the real object";
    case FileKind::Unknown: {
      std::string s;
      for (size_t k = 0; k < head.size() && k < 8; ++k) s += (head[k] >= 0x20 && head[k] < 0x7F) ? char(head[k]) : '.';
      return q + " is not a PyTorch, safetensors or NumPy file (starts with '" + s + "')";
    }
    default: return q + " is a " + file_kind_name(kind) + ", not " + wanted;
  }
}

}  // namespace gradstyle::io
