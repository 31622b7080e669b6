package main

// Hints shared by several steps: what to look at when a part of the system does not answer.
// `make run` runs the services as local processes; `make up` runs them in the cluster, where
// Tilt forwards the same local ports.
const (
	hintOrderAPI = "is order-api running? `make run` starts the four services; " +
		"in the cluster, check the order-api resource in Tilt (it forwards localhost:8080)"
	hintValidator = "is the validator running? `make run`, or check the validator resource in Tilt " +
		"(it forwards localhost:50051)"
	hintNotifier = "is the notifier running? `make run`, or check the notifier resource in Tilt " +
		"(it forwards its admin port to localhost:9103)"
	hintAnalytics = "is analytics running? `make run`, or check the analytics resource in Tilt " +
		"(it forwards localhost:8081)"
	hintRabbitMQ = "is RabbitMQ running? Locally `make brokers`; in the cluster check the rabbitmq resource " +
		"in Tilt, which forwards localhost:5672"
	hintKafka = "is Kafka running? Locally `make brokers`; in the cluster check the kafka resource in Tilt, " +
		"which forwards localhost:9092"
	hintDockerCLI = "install Docker Desktop (macOS, Windows) or Docker Engine (Linux): https://docs.docker.com/get-docker/ ; " +
		"`make doctor` checks every tool the course needs"
	hintDockerDaemon = "start Docker Desktop (on Linux: `sudo systemctl start docker`) and wait until `docker version` " +
		"shows a Server section"
)
