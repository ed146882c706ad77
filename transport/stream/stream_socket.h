#pragma once
// A TCP socket that may carry TLS: plain reads and writes go straight to the socket; once an
// SSL object is attached they go through OpenSSL on the socket's descriptor, and Asio only
// waits for readiness. Not Asio's ssl::stream: that one keeps two 17 kB record buffers and a
// BIO pair of two more (about 68 kB per connection before OpenSSL's own), where an idle
// connection here keeps OpenSSL's state only (SSL_MODE_RELEASE_BUFFERS). One outstanding read
// and one outstanding write at a time; everything on the owning worker. Completion handlers
// never run inside the call that starts the operation.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace palisade::transport {

class StreamSocket {
 public:
  explicit StreamSocket(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  ~StreamSocket();
  StreamSocket(const StreamSocket&) = delete;
  StreamSocket& operator=(const StreamSocket&) = delete;

  boost::asio::ip::tcp::socket& socket() { return socket_; }
  bool secure() const { return ssl_ != nullptr; }
  SSL* ssl() const { return ssl_; }
  // What OpenSSL said about the last failure (for logs; never key material).
  const std::string& lastError() const { return last_error_; }

  // Puts TLS on the connected socket, taking ownership of `ssl` (server or client state set).
  bool attach(SSL* ssl);

  // handler(error_code): the TLS handshake is done, or failed.
  template <typename Handler>
  void asyncHandshake(Handler handler) {
    boost::asio::post(socket_.get_executor(),
                      [this, handler = std::move(handler)]() mutable { handshakeStep(std::move(handler)); });
  }

  // handler(error_code, bytes): some bytes (at least one) were read into `buffer`.
  template <typename Handler>
  void asyncReadSome(boost::asio::mutable_buffer buffer, Handler handler) {
    if (ssl_ == nullptr) {
      socket_.async_read_some(buffer, std::move(handler));
      return;
    }
    // Bytes OpenSSL already holds would never wake the reactor.
    if (SSL_has_pending(ssl_) == 1) {
      boost::asio::post(socket_.get_executor(), [this, buffer, handler = std::move(handler)]() mutable {
        readStep(buffer, std::move(handler));
      });
      return;
    }
    socket_.async_wait(boost::asio::socket_base::wait_read, [this, buffer, handler = std::move(handler)](
                                                                const boost::system::error_code& ec) mutable {
      if (ec) {
        handler(ec, 0);
        return;
      }
      readStep(buffer, std::move(handler));
    });
  }

  // handler(error_code): every byte of `buffers` was written (or the stream failed).
  template <typename Handler>
  void asyncWrite(const std::vector<boost::asio::const_buffer>& buffers, Handler handler) {
    if (ssl_ == nullptr) {
      boost::asio::async_write(socket_, buffers,
                               [handler = std::move(handler)](const boost::system::error_code& ec,
                                                              std::size_t) mutable { handler(ec); });
      return;
    }
    // One contiguous buffer: messages go out in as few records (and system calls) as fit.
    out_.clear();
    for (const auto& b : buffers) out_.append(static_cast<const char*>(b.data()), b.size());
    out_offset_ = 0;
    boost::asio::post(socket_.get_executor(),
                      [this, handler = std::move(handler)]() mutable { writeStep(std::move(handler)); });
  }

  // Sends a TLS close_notify if it can without waiting, then closes the socket.
  void close();

 private:
  // What to do after an OpenSSL call that did not complete: wait for the socket (true) or fail.
  enum class Next { WaitRead, WaitWrite, Eof, Fail };
  Next classify(int result);
  boost::system::error_code failure(Next next);

  template <typename Handler>
  void waitThen(Next next, Handler step) {
    socket_.async_wait(
        next == Next::WaitRead ? boost::asio::socket_base::wait_read : boost::asio::socket_base::wait_write,
        std::move(step));
  }

  // A step posted before close() must not touch the descriptor number, which the kernel may
  // already have given to another connection.
  bool usable() const { return ssl_ != nullptr && socket_.is_open(); }

  template <typename Handler>
  void handshakeStep(Handler handler) {
    if (!usable()) {
      handler(boost::asio::error::operation_aborted);
      return;
    }
    ERR_clear_error();
    errno = 0;  // SSL_ERROR_SYSCALL reads it
    int result = SSL_do_handshake(ssl_);
    if (result == 1) {
      handler(boost::system::error_code());
      return;
    }
    Next next = classify(result);
    if (next == Next::WaitRead || next == Next::WaitWrite) {
      waitThen(next, [this, handler = std::move(handler)](const boost::system::error_code& ec) mutable {
        if (ec) {
          handler(ec);
          return;
        }
        handshakeStep(std::move(handler));
      });
      return;
    }
    handler(failure(next));
  }

  template <typename Handler>
  void readStep(boost::asio::mutable_buffer buffer, Handler handler) {
    if (!usable()) {
      handler(boost::asio::error::operation_aborted, 0);
      return;
    }
    std::size_t read = 0;
    ERR_clear_error();
    errno = 0;  // SSL_ERROR_SYSCALL reads it
    int result = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &read);
    if (result == 1) {
      handler(boost::system::error_code(), read);
      return;
    }
    Next next = classify(result);
    if (next == Next::WaitRead || next == Next::WaitWrite) {
      waitThen(next,
               [this, buffer, handler = std::move(handler)](const boost::system::error_code& ec) mutable {
                 if (ec) {
                   handler(ec, 0);
                   return;
                 }
                 readStep(buffer, std::move(handler));
               });
      return;
    }
    handler(failure(next), 0);
  }

  template <typename Handler>
  void writeStep(Handler handler) {
    if (!usable()) {
      handler(boost::asio::error::operation_aborted);
      return;
    }
    while (out_offset_ < out_.size()) {
      std::size_t written = 0;
      ERR_clear_error();
      errno = 0;  // SSL_ERROR_SYSCALL reads it
      int result = SSL_write_ex(ssl_, out_.data() + out_offset_, out_.size() - out_offset_, &written);
      if (result == 1) {
        out_offset_ += written;
        continue;
      }
      Next next = classify(result);
      if (next == Next::WaitRead || next == Next::WaitWrite) {
        waitThen(next, [this, handler = std::move(handler)](const boost::system::error_code& ec) mutable {
          if (ec) {
            handler(ec);
            return;
          }
          writeStep(std::move(handler));
        });
        return;
      }
      handler(failure(next));
      return;
    }
    std::string().swap(out_);  // an idle connection keeps no write buffer
    handler(boost::system::error_code());
  }

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  std::string out_;
  std::size_t out_offset_ = 0;
  std::string last_error_;
  bool failed_ = false;  // a fatal TLS error: no close_notify may follow (OpenSSL's rule)
};

}  // namespace palisade::transport
