#pragma once
// Typed errors. Every error gradstyle throws derives from gradstyle::Error and its message names
// the op or file, what was expected and what was found.
#include <stdexcept>
#include <string>

namespace gradstyle {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};
class ShapeError : public Error { using Error::Error; };     // incompatible shapes / sizes
class DTypeError : public Error { using Error::Error; };     // unsupported or mismatched dtype
class DeviceError : public Error { using Error::Error; };    // mixed devices, no CUDA, ...
class IndexError : public Error { using Error::Error; };     // dim or index out of range
class ValueError : public Error { using Error::Error; };     // bad argument value
class AutogradError : public Error { using Error::Error; };  // misuse of the autograd API
class FormatError : public Error { using Error::Error; };    // malformed or refused file content
class IOError : public Error { using Error::Error; };        // cannot open/read/write a file
class CudaError : public Error { using Error::Error; };      // CUDA / cuBLAS / cuDNN failure

// Formats arguments with operator<< into one string: err_msg("conv2d: got ", 3, " channels").
template <class... Args>
std::string err_msg(const Args&... args);

}  // namespace gradstyle

#include <sstream>
namespace gradstyle {
template <class... Args>
std::string err_msg(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace gradstyle

// GS_CHECK(cond, ErrorType, msg parts...) throws ErrorType(err_msg(parts...)) when cond is false.
#define GS_CHECK(cond, ErrType, ...)                                   \
  do {                                                                 \
    if (!(cond)) throw ::gradstyle::ErrType(::gradstyle::err_msg(__VA_ARGS__)); \
  } while (0)
