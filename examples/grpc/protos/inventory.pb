
ÿ
google/protobuf/timestamp.protogoogle.protobuf";
	Timestamp
seconds (Rseconds
nanos (RnanosB…
com.google.protobufBTimestampProtoPZ2google.golang.org/protobuf/types/known/timestamppbø¢GPBªGoogle.Protobuf.WellKnownTypesbproto3
ž
inventory.protoinventory.v1google/protobuf/timestamp.proto"A
GetStockRequest
sku (	Rsku
	warehouse (	R	warehouse"°
Stock
sku (	Rsku
	available (R	available<

warehouses (2.inventory.v1.WarehouseStockR
warehouses9

updated_at (2.google.protobuf.TimestampR	updatedAt"L
WarehouseStock
	warehouse (	R	warehouse
	available (R	available2
	Inventory>
GetStock.inventory.v1.GetStockRequest.inventory.v1.StockB

WatchStock.inventory.v1.GetStockRequest.inventory.v1.Stock0bproto3