#include "cli/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "gradstyle/io/file.hpp"

namespace gradstyle::cli::report {

std::string escape(const std::string& text) {
  std::string o;
  o.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string relative_ref(const std::string& page_dir, const std::string& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path rel = fs::relative(fs::absolute(file), fs::absolute(page_dir), ec);
  return ec || rel.empty() ? fs::absolute(file).generic_string() : rel.generic_string();
}

namespace {

bool numeric(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

std::string num(double v, int digits = 4) {
  std::ostringstream s;
  s << std::setprecision(digits) << v;
  return s.str();
}

// A JavaScript string literal (JSON rules are enough for file names and numbers).
std::string js_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '<') {
      o += "\\u003c";  // never "</script>" inside the script
      continue;
    }
    o += c;
  }
  return o + "\"";
}

const char* kStyle =
    "body{font-family:sans-serif;margin:2em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}"
    "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ccc;text-align:left}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}img{image-rendering:auto}"
    "table.im td{padding:2px;border:0}table.im img{display:block}figure{display:inline-block;margin:0 1em 1em 0}"
    "svg text{font-size:11px;fill:#333}input[type=range]{width:320px;vertical-align:middle}";

// Counts the images once the page has loaded; any that failed is a console error.
const char* kCheckScript =
    "<script>window.addEventListener('load',function(){var im=Array.prototype.slice.call(document.images);"
    "var ok=im.filter(function(i){return i.complete&&i.naturalWidth>0;});"
    "document.body.setAttribute('data-images',ok.length+'/'+im.length);"
    "im.forEach(function(i){if(!(i.complete&&i.naturalWidth>0))console.error('report: image did not load: '+i.getAttribute('src'));});"
    "});</script>\n";

}  // namespace

Page::Page(std::string title) : title_(std::move(title)) {}

void Page::heading(const std::string& text) { body_ += "<h2>" + escape(text) + "</h2>\n"; }
void Page::paragraph(const std::string& text) { body_ += "<p>" + escape(text) + "</p>\n"; }
void Page::raw(const std::string& html) { body_ += html; }

void Page::image(const std::string& src, const std::string& alt, int max_width_px) {
  body_ += "<p><img src=\"" + escape(src) + "\" alt=\"" + escape(alt) + "\"";
  if (max_width_px > 0) body_ += " style=\"max-width:" + std::to_string(max_width_px) + "px;width:100%\"";
  body_ += "></p>\n";
}

void Page::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string t = "<table><tr>";
  for (const auto& h : header) t += "<th>" + escape(h) + "</th>";
  t += "</tr>\n";
  for (const auto& r : rows) {
    t += "<tr>";
    for (const auto& c : r) t += (numeric(c) ? "<td class=\"n\">" : "<td>") + escape(c) + "</td>";
    t += "</tr>\n";
  }
  body_ += t + "</table>\n";
}

void Page::image_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& srcs,
                       int cell_px) {
  std::string t = "<table class=\"im\"><tr>";
  for (const auto& h : header) t += "<th>" + escape(h) + "</th>";
  t += "</tr>\n";
  for (const auto& r : srcs) {
    t += "<tr>";
    for (const auto& s : r) {
      t += "<td>";
      if (!s.empty())
        t += "<img src=\"" + escape(s) + "\" alt=\"" + escape(s) + "\" width=\"" + std::to_string(cell_px) + "\" height=\"" +
             std::to_string(cell_px) + "\">";
      t += "</td>";
    }
    t += "</tr>\n";
  }
  body_ += t + "</table>\n";
}

void Page::slider(const std::string& label, const std::vector<std::string>& values,
                  const std::vector<std::vector<std::string>>& rows, size_t start, int cell_px) {
  if (values.empty() || rows.empty()) return;
  start = std::min(start, values.size() - 1);
  const std::string id = "s" + std::to_string(sliders_++);
  std::string h = "<p><label>" + escape(label) + " <input type=\"range\" id=\"" + id + "\" min=\"0\" max=\"" +
                  std::to_string(values.size() - 1) + "\" step=\"1\" value=\"" + std::to_string(start) +
                  "\"></label> <output id=\"" + id + "v\">" + escape(values[start]) + "</output></p>\n<p>";
  for (size_t r = 0; r < rows.size(); ++r)
    h += "<img id=\"" + id + "r" + std::to_string(r) + "\" src=\"" + escape(rows[r].at(start)) + "\" alt=\"" +
         escape(label) + "\" width=\"" + std::to_string(cell_px) + "\" height=\"" + std::to_string(cell_px) + "\"> ";
  h += "</p>\n<script>(function(){var v=[";
  for (size_t k = 0; k < values.size(); ++k) h += (k ? "," : "") + js_string(values[k]);
  h += "],s=[";
  for (size_t r = 0; r < rows.size(); ++r) {
    h += r ? ",[" : "[";
    for (size_t k = 0; k < values.size(); ++k) h += (k ? "," : "") + js_string(rows[r].at(k));
    h += "]";
  }
  h += "];var e=document.getElementById('" + id + "');e.addEventListener('input',function(){var k=+e.value;"
       "document.getElementById('" + id + "v').textContent=v[k];for(var r=0;r<s.length;r++)"
       "document.getElementById('" + id + "r'+r).src=s[r][k];});})();</script>\n";
  body_ += h;
}

std::string Page::html() const {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape(title_) +
         "</title>\n<style>" + kStyle + "</style></head><body>\n<h1>" + escape(title_) + "</h1>\n" + body_ +
         kCheckScript + "</body></html>\n";
}

void Page::write(const std::string& path) const {
  const std::string h = html();
  io::atomic_write_file(path, std::vector<uint8_t>(h.begin(), h.end()));
}

std::string curves_svg(const std::string& csv_text, const std::vector<std::string>& skip) {
  std::istringstream in(csv_text);
  std::string line;
  if (!std::getline(in, line)) return "";
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::string cell;
    std::istringstream s(l);
    while (std::getline(s, cell, ',')) out.push_back(cell);
    if (!l.empty() && l.back() == ',') out.emplace_back();
    return out;
  };
  const std::vector<std::string> cols = split(line);
  std::vector<std::vector<double>> v(cols.size());
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto cells = split(line);
    for (size_t c = 0; c < cols.size(); ++c)
      v[c].push_back(c < cells.size() && numeric(cells[c]) ? std::strtod(cells[c].c_str(), nullptr) : NAN);
    ++n;
  }
  if (n < 2 || cols.empty()) return "";
  const int W = 320, H = 170, L = 52, R = 10, T = 22, B = 28;
  std::string svg;
  for (size_t c = 1; c < cols.size(); ++c) {
    if (std::find(skip.begin(), skip.end(), cols[c]) != skip.end()) continue;
    double lo = INFINITY, hi = -INFINITY, x0 = INFINITY, x1 = -INFINITY;
    bool positive = true;
    size_t finite = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[c][i]) || !std::isfinite(v[0][i])) continue;
      lo = std::min(lo, v[c][i]), hi = std::max(hi, v[c][i]);
      x0 = std::min(x0, v[0][i]), x1 = std::max(x1, v[0][i]);
      positive &= v[c][i] > 0;
      ++finite;
    }
    if (finite < 2) continue;
    const bool logy = positive && hi > 10 * lo;
    auto fy = [&](double y) { return logy ? std::log10(y) : y; };
    double ylo = fy(lo), yhi = fy(hi);
    if (yhi - ylo < 1e-12) ylo -= 0.5, yhi += 0.5;
    if (x1 - x0 < 1e-12) x1 = x0 + 1;
    std::string pts;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[c][i]) || !std::isfinite(v[0][i])) continue;
      const double px = L + (v[0][i] - x0) / (x1 - x0) * (W - L - R);
      const double py = T + (1 - (fy(v[c][i]) - ylo) / (yhi - ylo)) * (H - T - B);
      pts += num(px, 6) + "," + num(py, 6) + " ";
    }
    svg += "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(W) + "\" height=\"" +
           std::to_string(H) + "\" role=\"img\" aria-label=\"" + escape(cols[c]) + "\">";
    svg += "<rect x=\"" + std::to_string(L) + "\" y=\"" + std::to_string(T) + "\" width=\"" + std::to_string(W - L - R) +
           "\" height=\"" + std::to_string(H - T - B) + "\" fill=\"#fafafa\" stroke=\"#bbb\"/>";
    svg += "<text x=\"" + std::to_string(L) + "\" y=\"14\">" + escape(cols[c]) + (logy ? " (log scale)" : "") + "</text>";
    svg += "<text x=\"" + std::to_string(L - 4) + "\" y=\"" + std::to_string(T + 9) + "\" text-anchor=\"end\">" + num(hi) +
           "</text>";
    svg += "<text x=\"" + std::to_string(L - 4) + "\" y=\"" + std::to_string(H - B) + "\" text-anchor=\"end\">" + num(lo) +
           "</text>";
    svg += "<text x=\"" + std::to_string(L) + "\" y=\"" + std::to_string(H - 10) + "\">" + num(x0, 8) + "</text>";
    svg += "<text x=\"" + std::to_string(W - R) + "\" y=\"" + std::to_string(H - 10) + "\" text-anchor=\"end\">" +
           num(x1, 8) + " (" + escape(cols[0]) + ")</text>";
    svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"" + pts + "\"/></svg></figure>\n";
  }
  return svg;
}

}  // namespace gradstyle::cli::report
