#include "transport/stream/stream_socket.h"

#include <cerrno>

#include <fmt/format.h>

namespace palisade::transport {

StreamSocket::~StreamSocket() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

bool StreamSocket::attach(SSL* ssl) {
  if (ssl == nullptr) return false;
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  if (ec || SSL_set_fd(ssl, socket_.native_handle()) != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    return false;
  }
  ssl_ = ssl;
  return true;
}

StreamSocket::Next StreamSocket::classify(int result) {
  int error = SSL_get_error(ssl_, result);
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return Next::WaitRead;
    case SSL_ERROR_WANT_WRITE:
      return Next::WaitWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Next::Eof;
    case SSL_ERROR_SYSCALL:
      failed_ = true;
      if (ERR_peek_error() == 0) {
        // The peer went away without a close_notify (or the socket failed).
        last_error_ = errno != 0 ? std::error_code(errno, std::generic_category()).message()
                                 : std::string("connection closed");
        return Next::Eof;
      }
      [[fallthrough]];
    default: {
      failed_ = true;
      char text[256];
      last_error_.clear();
      while (unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, text, sizeof text);
        if (!last_error_.empty()) last_error_ += "; ";
        last_error_ += text;
      }
      if (last_error_.empty()) last_error_ = fmt::format("TLS error {}", error);
      return Next::Fail;
    }
  }
}

boost::system::error_code StreamSocket::failure(Next next) {
  return next == Next::Eof ? boost::system::error_code(boost::asio::error::eof)
                           : boost::system::error_code(boost::asio::error::connection_aborted);
}

void StreamSocket::close() {
  if (ssl_ != nullptr && !failed_ && SSL_is_init_finished(ssl_) == 1 && socket_.is_open()) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // one non-blocking attempt: the close_notify goes if the socket takes it
    ERR_clear_error();
  }
  boost::system::error_code ec;
  socket_.close(ec);
}

}  // namespace palisade::transport
