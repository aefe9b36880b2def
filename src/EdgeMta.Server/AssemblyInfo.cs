namespace EdgeMta.Server;
