#include "tools/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>

#include <fmt/format.h>

namespace cairn::tools {

namespace {

// The rate is measured over this much recent time, so that it follows the work's pace (a stall
// shows within seconds) without jumping with every step.
constexpr auto kRateWindow = std::chrono::seconds(5);

void WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report to: the work goes on regardless
    text.remove_prefix(static_cast<size_t>(n));
  }
}

int TerminalWidth(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

ProgressLine::ProgressLine(Options options) : options_(std::move(options)) {
  mode_ = options_.mode;
  if (mode_ == Mode::kAuto) mode_ = ::isatty(options_.fd) == 1 ? Mode::kTerminal : Mode::kQuiet;
  if (!options_.now) options_.now = [] { return Clock::now(); };
  if (options_.width <= 0 && mode_ == Mode::kTerminal) options_.width = TerminalWidth(options_.fd);
  if (options_.width <= 0) options_.width = 80;
  start_ = options_.now();
  samples_.push_back({start_, 0, 0});
}

ProgressLine::~ProgressLine() { Finish(); }

void ProgressLine::Add(uint64_t items, uint64_t bytes) {
  std::lock_guard lock(mu_);
  done_ += items;
  bytes_ += bytes;
  Draw(false);
}

void ProgressLine::Set(uint64_t done, uint64_t bytes) {
  std::lock_guard lock(mu_);
  done_ = done;
  bytes_ = bytes;
  Draw(false);
}

void ProgressLine::Clear() {
  std::lock_guard lock(mu_);
  if (mode_ == Mode::kTerminal && drawn_) {
    Write("\r\x1b[K");
    drawn_ = false;
    last_draw_ = {};
  }
}

void ProgressLine::Finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  Draw(true);
  finished_ = true;
}

void ProgressLine::Write(std::string_view text) {
  if (options_.write) {
    options_.write(text);
  } else {
    WriteAll(options_.fd, text);
  }
}

ProgressLine::Snapshot ProgressLine::Take(Clock::time_point now) {
  samples_.push_back({now, done_, bytes_});
  while (samples_.size() > 2 && now - samples_[1].at >= kRateWindow) samples_.pop_front();
  Snapshot s;
  s.label = options_.label;
  s.unit = options_.unit;
  s.done = done_;
  s.total = options_.total;
  s.bytes = bytes_;
  s.total_bytes = options_.total_bytes;
  s.elapsed_s = std::chrono::duration<double>(now - start_).count();
  const Sample& oldest = samples_.front();
  const double window = std::chrono::duration<double>(now - oldest.at).count();
  if (window > 0) {
    s.items_per_s = static_cast<double>(done_ - std::min(done_, oldest.done)) / window;
    s.bytes_per_s = static_cast<double>(bytes_ - std::min(bytes_, oldest.bytes)) / window;
  }
  // Counted in bytes when the total is known in bytes, else in items.
  if (s.total_bytes > 0 && s.bytes_per_s > 0) {
    s.eta_s = static_cast<double>(s.total_bytes - std::min(s.bytes, s.total_bytes)) / s.bytes_per_s;
  } else if (s.total > 0 && s.items_per_s > 0) {
    s.eta_s = static_cast<double>(s.total - std::min(s.done, s.total)) / s.items_per_s;
  }
  return s;
}

void ProgressLine::Draw(bool final) {
  if (mode_ == Mode::kQuiet || finished_) return;
  const Clock::time_point now = options_.now();
  const auto interval =
      mode_ == Mode::kTerminal ? options_.redraw_interval : options_.json_interval;
  if (!final && last_draw_ != Clock::time_point{} && now - last_draw_ < interval) return;
  if (!final && last_draw_ == Clock::time_point{} && mode_ == Mode::kJson &&
      now - start_ < interval) {
    return;  // JSON: the first line after an interval, not at the first step
  }
  last_draw_ = now;
  Snapshot s = Take(now);
  s.finished = final;
  if (final) {
    // The average over the whole work, which is what a finished line reports.
    s.items_per_s = s.elapsed_s > 0 ? static_cast<double>(s.done) / s.elapsed_s : 0;
    s.bytes_per_s = s.elapsed_s > 0 ? static_cast<double>(s.bytes) / s.elapsed_s : 0;
    s.eta_s = 0;
  }
  if (mode_ == Mode::kJson) {
    Write(FormatJson(s) + "\n");
    return;
  }
  Write("\r" + FormatLine(s, options_.width) + "\x1b[K" + (final ? "\n" : ""));
  drawn_ = !final;
}

std::string ProgressLine::FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string ProgressLine::FormatBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  size_t i = 0;
  while (bytes >= 1024 && i + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++i;
  }
  if (i == 0) return fmt::format("{:.0f} B", bytes);
  return fmt::format("{:.1f} {}", bytes, kUnits[i]);
}

std::string ProgressLine::FormatDuration(double seconds) {
  if (!(seconds >= 0) || std::isinf(seconds)) return "?";
  const auto s = static_cast<uint64_t>(std::llround(seconds));
  if (seconds < 10) return fmt::format("{:.1f} s", seconds);
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, (s % 3600) / 60);
}

std::string ProgressLine::FormatLine(const Snapshot& s, int width) {
  std::string line = s.label + "  " + FormatCount(s.done);
  if (s.total > 0) line += "/" + FormatCount(s.total);
  line += " " + s.unit;
  if (s.total_bytes > 0) {
    line += fmt::format("  {}/{}", FormatBytes(static_cast<double>(s.bytes)),
                        FormatBytes(static_cast<double>(s.total_bytes)));
  } else if (s.bytes > 0) {
    line += "  " + FormatBytes(static_cast<double>(s.bytes));
  }
  const uint64_t whole = s.total_bytes > 0 ? s.total_bytes : s.total;
  const uint64_t part = s.total_bytes > 0 ? s.bytes : s.done;
  if (whole > 0) {
    line += fmt::format(" ({}%)", std::min<uint64_t>(100, part * 100 / whole));
  }
  line += fmt::format("  {} {}/s", FormatCount(static_cast<uint64_t>(std::llround(s.items_per_s))),
                      s.unit);
  if (s.bytes > 0) line += "  " + FormatBytes(s.bytes_per_s) + "/s";
  if (s.finished) {
    line += "  done in " + FormatDuration(s.elapsed_s);
  } else if (s.eta_s >= 0) {
    line += "  ETA " + FormatDuration(s.eta_s);
  }
  // Never wrap: a wrapped line cannot be redrawn in place.
  const size_t columns = static_cast<size_t>(std::max(width, 2) - 1);
  if (line.size() > columns) {
    line.resize(columns);
    while (!line.empty() && line.back() == ' ') line.pop_back();
  }
  return line;
}

std::string ProgressLine::FormatJson(const Snapshot& s) {
  std::string out = fmt::format("{{\"progress\":{},\"unit\":{},\"done\":{}", JsonString(s.label),
                                JsonString(s.unit), s.done);
  if (s.total > 0) out += fmt::format(",\"total\":{}", s.total);
  out += fmt::format(",\"bytes\":{}", s.bytes);
  if (s.total_bytes > 0) out += fmt::format(",\"total_bytes\":{}", s.total_bytes);
  out += fmt::format(",\"per_s\":{:.1f},\"bytes_per_s\":{:.0f},\"elapsed_s\":{:.3f}", s.items_per_s,
                     s.bytes_per_s, s.elapsed_s);
  if (s.eta_s >= 0 && !s.finished) out += fmt::format(",\"eta_s\":{:.1f}", s.eta_s);
  out += fmt::format(",\"finished\":{}}}", s.finished ? "true" : "false");
  return out;
}

}  // namespace cairn::tools
