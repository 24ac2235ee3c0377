-- What an exception concerns besides its order: the SKU and location of the line it is
-- about (the short line of an `oversold`, an order's only line), when the event or the
-- decision knows them. Both NULL otherwise; rows written before stay NULL.
ALTER TABLE exceptions ADD COLUMN sku TEXT;
ALTER TABLE exceptions ADD COLUMN location TEXT;
