#pragma once
// Detects a file's format from its first bytes (FORMATS.md §1); never from the extension.
#include <string>

#include "gradstyle/io/file.hpp"

namespace gradstyle::io {

enum class FileKind {
  Empty, Zip, LegacyTorch, TorchTar, Npy, Safetensors, BarePickle, Html, GitLfs, Png, Jpeg, Bmp, Unknown
};

const char* file_kind_name(FileKind k);
FileKind sniff_bytes(ByteSpan head_or_file, uint64_t file_size);
FileKind sniff_file(const std::string& path);  // IOError when the file cannot be read

// A one-line explanation for a file that a reader expecting `wanted` cannot load, e.g.
// "'x.pt' is an HTML page, probably a download-quota or login page, not weights".
std::string refusal_message(const std::string& name, FileKind kind, ByteSpan head, const std::string& wanted);

}  // namespace gradstyle::io
