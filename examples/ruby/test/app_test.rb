require "minitest/autorun"
require "net/http"
require_relative "../app"

class AppTest < Minitest::Test
  def setup
    ENV["APP_VERSION"] = "7c77eb36"
    log = WEBrick::Log.new(File::NULL)
    @server = Hello.server(0, BindAddress: "127.0.0.1", Logger: log, AccessLog: [])
    @thread = Thread.new { @server.start }
    @port = @server.listeners.first.addr[1]
  end

  def teardown
    @server.shutdown
    @thread.join
  end

  def get(path)
    Net::HTTP.get_response(URI("http://127.0.0.1:#{@port}#{path}"))
  end

  def test_endpoints
    res = get("/")
    assert_equal "200", res.code
    assert_match(/\A[a-z]+_[a-z]+\n\z/, res.body)
    assert_equal "ruby-#{RUBY_VERSION}", res["env"]
    assert_equal "7c77eb36\n", get("/version").body
    assert_equal "404", get("/nope").code
  end
end
