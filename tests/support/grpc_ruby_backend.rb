# A real gRPC-core backend for anycable.RPC (Debian's ruby-grpc), run as a child process:
# answers Connect with a welcome (after a short delay, so calls are in flight when it stops),
# Command and Disconnect with SUCCESS. argv[0] = port (0 = any). Prints the bound port on
# stdout. SIGTERM stops it gracefully (HTTP/2 GOAWAY to every client, in-flight calls finish),
# the way a Rails app's `anycable` process shuts down on deploy.
require "grpc"
require "google/protobuf"

# Only the fields this backend reads or writes; the rest of each request is skipped as unknown.
Google::Protobuf::DescriptorPool.generated_pool.build do
  add_file("anycable_min.proto", syntax: :proto3) do
    add_message "anycable.ConnectionRequest" do
    end
    add_message "anycable.ConnectionResponse" do
      optional :status, :int32, 1
      optional :identifiers, :string, 2
      repeated :transmissions, :string, 3
    end
    add_message "anycable.CommandMessage" do
    end
    add_message "anycable.CommandResponse" do
      optional :status, :int32, 1
    end
    add_message "anycable.DisconnectRequest" do
    end
    add_message "anycable.DisconnectResponse" do
      optional :status, :int32, 1
    end
  end
end

POOL = Google::Protobuf::DescriptorPool.generated_pool
def msg(name) = POOL.lookup("anycable.#{name}").msgclass

ConnectionRequest = msg("ConnectionRequest")
ConnectionResponse = msg("ConnectionResponse")
CommandMessage = msg("CommandMessage")
CommandResponse = msg("CommandResponse")
DisconnectRequest = msg("DisconnectRequest")
DisconnectResponse = msg("DisconnectResponse")

class RPCService
  include GRPC::GenericService
  self.marshal_class_method = :encode
  self.unmarshal_class_method = :decode
  self.service_name = "anycable.RPC"
  rpc :Connect, ConnectionRequest, ConnectionResponse
  rpc :Command, CommandMessage, CommandResponse
  rpc :Disconnect, DisconnectRequest, DisconnectResponse
end

class Backend < RPCService
  def connect(_req, _call)
    sleep 0.02
    ConnectionResponse.new(status: 1, identifiers: "{}", transmissions: ['{"type":"welcome"}'])
  end

  def command(_req, _call) = CommandResponse.new(status: 1)
  def disconnect(_req, _call) = DisconnectResponse.new(status: 1)
end

server = GRPC::RpcServer.new(pool_size: 8)
port = server.add_http2_port("127.0.0.1:#{ARGV[0] || 0}", :this_port_is_insecure)
server.handle(Backend.new)
$stdout.puts(port)
$stdout.flush
server.run_till_terminated_or_interrupted(["TERM", "INT"])
