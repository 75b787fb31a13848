module github.com/databus-gateway/databus/deploy

go 1.26.8
