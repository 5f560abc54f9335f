#include "frontdoor/resp/reply_writer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace cairn::frontdoor::resp {

void ReplyWriter::Header(char type, int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  out_->push_back(type);
  out_->append(buf, end);
  out_->append("\r\n");
}

void ReplyWriter::Simple(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n");
}

void ReplyWriter::Error(std::string_view message) {
  // As Redis does: line breaks at the end go (an argument quoted last in a message may end with
  // one), the others become spaces, so that the reply stays one line.
  while (!message.empty() && (message.back() == '\r' || message.back() == '\n')) {
    message.remove_suffix(1);
  }
  out_->push_back('-');
  for (char c : message) out_->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out_->append("\r\n");
}

void ReplyWriter::Integer(int64_t v) { Header(':', v); }

void ReplyWriter::Bulk(std::string_view s) {
  out_->reserve(out_->size() + s.size() + 32);  // one allocation for header, value and CRLF
  Header('$', static_cast<int64_t>(s.size()));
  out_->append(s);
  out_->append("\r\n");
}

void ReplyWriter::Null() { out_->append(protocol_ >= 3 ? "_\r\n" : "$-1\r\n"); }
void ReplyWriter::NullArray() { out_->append(protocol_ >= 3 ? "_\r\n" : "*-1\r\n"); }
void ReplyWriter::Array(size_t n) { Header('*', static_cast<int64_t>(n)); }

void ReplyWriter::Map(size_t pairs) {
  if (protocol_ >= 3) {
    Header('%', static_cast<int64_t>(pairs));
  } else {
    Header('*', static_cast<int64_t>(2 * pairs));
  }
}

void ReplyWriter::Push(size_t n) { Header('>', static_cast<int64_t>(n)); }

void ReplyWriter::Set(size_t n) { Header(protocol_ >= 3 ? '~' : '*', static_cast<int64_t>(n)); }

void ReplyWriter::Double(double v) {
  const std::string text = FormatDouble(v);
  if (protocol_ >= 3) {
    out_->push_back(',');
    out_->append(std::isinf(v) ? (v > 0 ? "inf" : "-inf") : text);
    out_->append("\r\n");
  } else {
    Bulk(text);
  }
}

void ReplyWriter::Bool(bool v) {
  if (protocol_ >= 3) {
    out_->append(v ? "#t\r\n" : "#f\r\n");
  } else {
    Integer(v ? 1 : 0);
  }
}

void ReplyWriter::Verbatim(std::string_view text) {
  if (protocol_ >= 3) {
    Header('=', static_cast<int64_t>(text.size() + 4));
    out_->append("txt:");
    out_->append(text);
    out_->append("\r\n");
  } else {
    Bulk(text);
  }
}

}  // namespace cairn::frontdoor::resp
