# shipper's Ruby sample app, the twin of examples/hello: "/" answers a random
# Docker-style name (distracted_clarke), "/version" the short commit SHA from
# APP_VERSION, and every response carries "env: ruby-<version>". It runs on
# WEBrick, which left Ruby's standard library in 3.0: Debian packages it as
# ruby-webrick, elsewhere it is the one gem of the Gemfile.
require "webrick"

module Hello
  ADJECTIVES = %w[admiring brave busy clever distracted eager ecstatic elegant focused gallant happy hopeful
                  jolly keen laughing modest nostalgic peaceful quirky relaxed serene sharp stoic tender upbeat
                  vibrant wizardly zealous].freeze
  NAMES = %w[albattani babbage bohr clarke curie darwin einstein euler feynman galileo goldberg hopper hypatia
             kepler knuth lamarr lovelace mccarthy meitner newton noether pasteur ritchie shannon thompson turing
             wozniak yonath].freeze
  ENV_HEADER = "ruby-#{RUBY_VERSION}".freeze

  def self.random_name
    "#{ADJECTIVES.sample}_#{NAMES.sample}"
  end

  def self.version
    v = ENV.fetch("APP_VERSION", "")
    v.empty? ? "unknown" : v
  end

  # server is a WEBrick server answering on port (0: any free port).
  def self.server(port, **options)
    server = WEBrick::HTTPServer.new(BindAddress: "0.0.0.0", Port: port, **options)
    server.mount_proc("/") do |req, res|
      res["env"] = ENV_HEADER
      res.content_type = "text/plain; charset=utf-8"
      case req.path
      when "/" then res.body = "#{random_name}\n"
      when "/version" then res.body = "#{version}\n"
      else
        res.status = 404
        res.body = "not found\n"
      end
    end
    server
  end
end

if $PROGRAM_NAME == __FILE__
  port = Integer(ENV.fetch("PORT", "8080"))
  server = Hello.server(port, Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN), AccessLog: [])
  %w[INT TERM].each { |sig| trap(sig) { server.shutdown } }
  warn "ruby #{Hello.version} listening on 0.0.0.0:#{port}"
  server.start
end
